#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// An int8 copy of a float32 matrix, one scale per row, for approximate inner products at a
/// quarter of the float rows' memory traffic: a row x is stored as round(x / s) with
/// s = max|x| / 127, the query is quantised once per call to int16, and a dot product is one
/// int32 accumulation (which vectorises) times the two scales.
///
/// The error of one product is below |q|·|x|·√D·(1/254 + 1/65534) (D ≤ 516); callers that
/// need exact order re-score the few rows they pick (the ranking's fresh and promoted
/// sources do). Immutable after init; shareable.
public struct Int8Rows: Sendable {
    public let dimension: Int
    public let count: Int
    private let codes: [Int8]
    private let scales: [Float]

    /// Quantises `count` rows of `dimension` floats; `row(i)` gives row i.
    public init(count: Int, dimension: Int, row: (Int) -> UnsafePointer<Float>) {
        precondition(dimension > 0 && count >= 0, "Int8Rows: \(count) rows of dimension \(dimension)")
        var codes = [Int8](repeating: 0, count: count * dimension)
        var scales = [Float](repeating: 0, count: count)
        codes.withUnsafeMutableBufferPointer { c in
            for i in 0..<count {
                let x = row(i)
                var m: Float = 0
                for j in 0..<dimension { m = max(m, abs(x[j])) }
                guard m > 0, m.isFinite else { continue }
                let s = m / 127
                scales[i] = s
                for j in 0..<dimension { c[i * dimension + j] = Int8((x[j] / s).rounded()) }
            }
        }
        self.dimension = dimension
        self.count = count
        self.codes = codes
        self.scales = scales
    }

    /// Approximate <query, row i> for i in `rows`, into `out[0..<rows.count]`. `scratch` is
    /// reused across calls (one int16 copy of the query).
    /// Which vector kernel `dots` uses: the fastest for the dimension, or the general one (for
    /// the benchmark that compares them; the results are the same).
    public enum Kernel: Sendable { case automatic, general }

    public func dots(_ query: UnsafePointer<Float>, rows: Range<Int>, scratch: inout [Int16],
                     into out: UnsafeMutablePointer<Float>, kernel: Kernel = .automatic) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= count, "Int8Rows.dots: rows \(rows) of \(count)")
        let d = dimension
        if scratch.count < d { scratch = [Int16](repeating: 0, count: d) }
        var qmax: Float = 0
        for j in 0..<d { qmax = max(qmax, abs(query[j])) }
        guard qmax > 0, qmax.isFinite else {
            for i in 0..<rows.count { out[i] = 0 }
            return
        }
        // |code| <= 127 and D products must fit an Int32 accumulator.
        let qLimit = Float(min(32_767, Int(Int32.max) / (127 * d)))
        let qs = qLimit / qmax
        for j in 0..<d { scratch[j] = Int16((query[j] * qs).rounded()) }
        let inv = 1 / qs
        scratch.withUnsafeBufferPointer { qb in
            codes.withUnsafeBufferPointer { cb in
                scales.withUnsafeBufferPointer { sb in
                    var from = rows.lowerBound
                    #if arch(x86_64)
                    if d == 64 && kernel == .automatic {
                        from = Self.dots8x64(qb.baseAddress!, codes: cb.baseAddress!, scales: sb.baseAddress!,
                                             rows: rows, inv: inv, into: out)
                    } else if d % 16 == 0 {
                        from = Self.dots8(qb.baseAddress!, codes: cb.baseAddress!, scales: sb.baseAddress!, dimension: d,
                                          rows: rows, inv: inv, into: out)
                    }
                    #endif
                    Self.dotsScalar(qb.baseAddress!, codes: cb.baseAddress!, scales: sb.baseAddress!, dimension: d,
                                    rows: from..<rows.upperBound, inv: inv, into: out + (from - rows.lowerBound))
                }
            }
        }
    }

    /// The stored codes and scales, for tests of the kernels.
    func withStorage<R>(_ body: (UnsafePointer<Int8>, UnsafePointer<Float>) -> R) -> R {
        codes.withUnsafeBufferPointer { c in scales.withUnsafeBufferPointer { body(c.baseAddress!, $0.baseAddress!) } }
    }

    /// One row at a time (any dimension).
    static func dotsScalar(_ q: UnsafePointer<Int16>, codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>,
                           dimension d: Int, rows: Range<Int>, inv: Float, into out: UnsafeMutablePointer<Float>) {
        for (o, i) in rows.enumerated() {
            let c = codes + i * d
            var acc: Int32 = 0
            for j in 0..<d { acc &+= Int32(c[j]) &* Int32(q[j]) }
            out[o] = Float(acc) * scales[i] * inv
        }
    }

    #if arch(x86_64)
    /// Eight rows at a time with AVX2 (D a multiple of 16): per 16 codes one sign extension to
    /// int16 and one `vpmaddwd`, and one horizontal-add tree for the eight rows' sums (a row at a
    /// time, the reduction cost as much as the products). The same integer sums as
    /// `dotsScalar`, hence the same floats. Returns the first row it left to the caller.
    static func dots8(_ q: UnsafePointer<Int16>, codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>,
                      dimension d: Int, rows: Range<Int>, inv: Float, into out: UnsafeMutablePointer<Float>) -> Int {
        let qr = UnsafeRawPointer(q)
        @inline(__always) func row(_ i: Int) -> __m256i {
            let c = UnsafeRawPointer(codes + i * d)
            var s = _mm256_setzero_si256()
            var j = 0
            while j < d {
                let x = _mm256_cvtepi8_epi16(c.loadUnaligned(fromByteOffset: j, as: __m128i.self))
                s = _mm256_add_epi32(s, _mm256_madd_epi16(x, qr.loadUnaligned(fromByteOffset: 2 * j, as: __m256i.self)))
                j &+= 16
            }
            return s
        }
        return eightAtATime(rows: rows, scales: scales, inv: inv, into: out, row: row)
    }

    /// `dots8` for D = 64 (the model's embeddings): the query's 64 int16 stay in four registers
    /// and each row is four sign extensions, four `vpmaddwd` and three adds, no inner loop (the
    /// general kernel reloads the query and pays a loop branch per 16 codes: ~2x the
    /// instructions). The same integer sums, hence the same floats.
    static func dots8x64(_ q: UnsafePointer<Int16>, codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>,
                         rows: Range<Int>, inv: Float, into out: UnsafeMutablePointer<Float>) -> Int {
        let qr = UnsafeRawPointer(q)
        let q0 = qr.loadUnaligned(as: __m256i.self), q1 = qr.loadUnaligned(fromByteOffset: 32, as: __m256i.self)
        let q2 = qr.loadUnaligned(fromByteOffset: 64, as: __m256i.self), q3 = qr.loadUnaligned(fromByteOffset: 96, as: __m256i.self)
        @inline(__always) func row(_ i: Int) -> __m256i {
            let c = UnsafeRawPointer(codes + i &* 64)
            let a = _mm256_madd_epi16(_mm256_cvtepi8_epi16(c.loadUnaligned(as: __m128i.self)), q0)
            let b = _mm256_madd_epi16(_mm256_cvtepi8_epi16(c.loadUnaligned(fromByteOffset: 16, as: __m128i.self)), q1)
            let e = _mm256_madd_epi16(_mm256_cvtepi8_epi16(c.loadUnaligned(fromByteOffset: 32, as: __m128i.self)), q2)
            let f = _mm256_madd_epi16(_mm256_cvtepi8_epi16(c.loadUnaligned(fromByteOffset: 48, as: __m128i.self)), q3)
            return _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(e, f))
        }
        return eightAtATime(rows: rows, scales: scales, inv: inv, into: out, row: row)
    }

    /// The loop both kernels share: eight rows' int32 lane sums from `row`, one horizontal-add
    /// tree for the eight, times the rows' scales and `inv`. Returns the first row it left.
    @inline(__always)
    static func eightAtATime(rows: Range<Int>, scales: UnsafePointer<Float>, inv: Float,
                             into out: UnsafeMutablePointer<Float>, row: (Int) -> __m256i) -> Int {
        var i = rows.lowerBound
        while i + 8 <= rows.upperBound {
            let h01 = _mm256_hadd_epi32(row(i), row(i + 1)), h23 = _mm256_hadd_epi32(row(i + 2), row(i + 3))
            let h45 = _mm256_hadd_epi32(row(i + 4), row(i + 5)), h67 = _mm256_hadd_epi32(row(i + 6), row(i + 7))
            let a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67)
            // a = [r0 r1 r2 r3 (low halves) | r0 r1 r2 r3 (high halves)], b likewise for r4..r7.
            let av = unsafeBitCast(a, to: SIMD8<Int32>.self), bv = unsafeBitCast(b, to: SIMD8<Int32>.self)
            let sums = SIMD8(lowHalf: av.lowHalf &+ av.highHalf, highHalf: bv.lowHalf &+ bv.highHalf)
            let sc = UnsafeRawPointer(scales + i).loadUnaligned(as: SIMD8<Float>.self)
            let f = SIMD8<Float>(sums) * sc * inv
            UnsafeMutableRawPointer(out + (i - rows.lowerBound)).storeBytes(of: f, as: SIMD8<Float>.self)
            i += 8
        }
        return i
    }
    #endif
}
