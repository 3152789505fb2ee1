#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// An int8 copy of a float32 matrix, one scale per row, for approximate inner products at a
/// quarter of the float rows' memory traffic: a row x is stored as round(x / s) with
/// s = max|x| / 127, the query is quantised once (`Int8Query`) to 129 levels (-64...64), and a dot
/// product is one int32 accumulation times the two scales.
///
/// Rows are stored in blocks of eight, four dimensions at a time: the 32 bytes of dimensions
/// 4j..4j+3 of the block's eight rows are contiguous, so on x86-64 one `vpmaddubsw` (query
/// bytes against row bytes) and one `vpmaddwd` add four dimensions to eight rows' sums, with
/// no horizontal reduction (the row-major kernel this replaced sign-extended every code to
/// 16 bits and needed a reduction tree per eight rows: ~2x the instructions per row). The query
/// is offset to 0...128 for `vpmaddubsw`'s unsigned operand (two products of at most
/// 128 · 127 cannot saturate its 16-bit pair sums); the offset is taken back out with each
/// row's code sum.
///
/// The error of one product is below |q|·|x|·(√D·(1/254 + 1/128) + D/(254·128)) (D ≤ 516);
/// callers that need exact order re-score the few rows they pick (the ranking's fresh and
/// promoted sources do). Immutable after init; shareable.
public struct Int8Rows: Sendable {
    public let dimension: Int
    public let count: Int
    /// Groups of four dimensions (the last padded with zeros).
    private let quads: Int
    /// Blocks of eight rows × `quads` × 32 bytes (rows past `count` are zero).
    private let codes: [Int8]
    /// Per row (padded to whole blocks): 64 · Σ codes, the query offset's share of a sum.
    private let offsetSums: [Int32]
    private let scales: [Float]
    /// Per row (padded), an optional float coordinate kept out of the int8 codes: each dot
    /// product adds lead · `Int8Query.lead` (exact in float). Empty without one.
    private let leads: [Float]

    /// The query offset: a query value q in -64...64 is the unsigned byte q + 64.
    static let queryOffset: Int32 = 64

    /// Quantises `count` rows of `dimension` floats; `row(i)` gives row i, `lead(i)` (when given)
    /// a float coordinate of row i kept exact beside the codes.
    public init(count: Int, dimension: Int, row: (Int) -> UnsafePointer<Float>, lead: ((Int) -> Float)? = nil) {
        precondition(dimension > 0 && dimension <= 516 && count >= 0, "Int8Rows: \(count) rows of dimension \(dimension)")
        let quads = (dimension + 3) / 4
        let padded = (count + 7) / 8 * 8
        var codes = [Int8](repeating: 0, count: padded * quads * 4)
        var offsetSums = [Int32](repeating: 0, count: padded)
        var scales = [Float](repeating: 0, count: padded)
        codes.withUnsafeMutableBufferPointer { c in
            for i in 0..<count {
                let x = row(i)
                var m: Float = 0
                for j in 0..<dimension { m = max(m, abs(x[j])) }
                guard m > 0, m.isFinite else { continue }
                let s = m / 127
                scales[i] = s
                var sum: Int32 = 0
                for j in 0..<dimension {
                    let v = Int8((x[j] / s).rounded())
                    c[Self.offset(row: i, dim: j, quads: quads)] = v
                    sum += Int32(v)
                }
                offsetSums[i] = Self.queryOffset * sum
            }
        }
        self.dimension = dimension
        self.count = count
        self.quads = quads
        self.codes = codes
        self.offsetSums = offsetSums
        self.scales = scales
        if let lead {
            var leads = [Float](repeating: 0, count: padded)
            for i in 0..<count { leads[i] = lead(i) }
            self.leads = leads
        } else {
            self.leads = []
        }
    }

    /// Whether the rows carry a lead coordinate.
    public var hasLead: Bool { !leads.isEmpty }

    /// Where the code of row `row`, dimension `dim` is stored.
    @inline(__always)
    static func offset(row: Int, dim: Int, quads: Int) -> Int {
        ((row >> 3) * quads + (dim >> 2)) * 32 + (row & 7) * 4 + (dim & 3)
    }

    /// The code of row `row`, dimension `dim` (tests).
    func code(row: Int, dim: Int) -> Int8 { codes[Self.offset(row: row, dim: dim, quads: quads)] }

    /// Which kernel `dots` uses: the vector one, or one product at a time (the benchmark that
    /// compares them; the results are the same).
    public enum Kernel: Sendable { case automatic, scalar }

    /// Approximate <query, row i> for i in `rows`, into `out[0..<rows.count]`.
    public func dots(_ query: Int8Query, rows: Range<Int>, into out: UnsafeMutablePointer<Float>,
                     kernel: Kernel = .automatic) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= count, "Int8Rows.dots: rows \(rows) of \(count)")
        precondition(query.dimension == dimension, "Int8Rows.dots: query of dimension \(query.dimension), rows of \(dimension)")
        if kernel == .scalar { return dotsScalar(query, rows: rows, into: out) }
        write(query, rows: rows, into: out)
    }

    /// The approximate dots of `rows` into `out`.
    private func write(_ query: Int8Query, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        guard let inv = query.inv else {
            for (o, i) in rows.enumerated() { out[o] = leadTerm(i, query) }
            return
        }
        withBlocks(query, inv: inv) { block in
            var i = rows.lowerBound
            while i < rows.upperBound {
                let b = i >> 3
                let f = block(b)
                if i == b * 8 && i + 8 <= rows.upperBound {
                    UnsafeMutableRawPointer(out + (i - rows.lowerBound)).storeBytes(of: f, as: SIMD8<Float>.self)
                    i += 8
                    continue
                }
                let end = min(rows.upperBound, b * 8 + 8)
                while i < end {
                    out[i - rows.lowerBound] = f[i & 7]
                    i += 1
                }
            }
        }
    }

    /// Calls `visit(i, dot)` for the rows i in `rows`, in ascending order, whose approximate
    /// dot product with `query` is above the running threshold: `threshold` at first, then
    /// whatever `visit` last returned. The same calls as computing `dots` and walking them in
    /// order, without writing them out; a block of eight rows whose dots are all at or below
    /// the threshold costs one vector compare.
    public func forEachAbove(_ query: Int8Query, rows: Range<Int>, threshold: Float,
                             _ visit: (Int, Float) -> Float) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= count, "Int8Rows.forEachAbove: rows \(rows) of \(count)")
        precondition(query.dimension == dimension, "Int8Rows.forEachAbove: query of dimension \(query.dimension), rows of \(dimension)")
        guard !rows.isEmpty else { return }
        var t = threshold
        guard let inv = query.inv else {
            for i in rows where leadTerm(i, query) > t { t = visit(i, leadTerm(i, query)) }
            return
        }
        withBlocks(query, inv: inv) { block in
            for b in (rows.lowerBound >> 3)..<((rows.upperBound + 7) >> 3) {
                let f = block(b)
                var bits = Self.lanes(f, above: t)
                guard bits != 0 else { continue }
                let first = b * 8
                if first < rows.lowerBound { bits &= ~UInt32(0) << UInt32(rows.lowerBound - first) }
                if first + 8 > rows.upperBound { bits &= (UInt32(1) << UInt32(rows.upperBound - first)) &- 1 }
                while bits != 0 {
                    let lane = Int(bits.trailingZeroBitCount)
                    bits &= bits - 1
                    if f[lane] > t { t = visit(first + lane, f[lane]) }
                }
            }
        }
    }

    /// Row i's lead coordinate times the query's (0 without leads).
    @inline(__always)
    private func leadTerm(_ i: Int, _ query: Int8Query) -> Float { leads.isEmpty ? 0 : leads[i] * query.lead }

    /// One bit per lane of `f` above `t`.
    @inline(__always)
    static func lanes(_ f: SIMD8<Float>, above t: Float) -> UInt32 {
        #if arch(x86_64)
        // t - f is negative exactly when f > t (the compare intrinsic is a macro Swift cannot import).
        return UInt32(bitPattern: _mm256_movemask_ps(_mm256_sub_ps(_mm256_set1_ps(t), unsafeBitCast(f, to: __m256.self))))
        #else
        var bits: UInt32 = 0
        for i in 0..<8 where f[i] > t { bits |= 1 << UInt32(i) }
        return bits
        #endif
    }

    /// Runs `body` with a function giving the approximate dot products of block b's eight rows
    /// (the storage's base pointers taken once).
    @inline(__always)
    private func withBlocks(_ query: Int8Query, inv: Float, _ body: ((Int) -> SIMD8<Float>) -> Void) {
        let quads = quads
        let qLead = query.lead
        query.bytes.withUnsafeBufferPointer { qb in
            codes.withUnsafeBufferPointer { c in
                offsetSums.withUnsafeBufferPointer { o in
                    scales.withUnsafeBufferPointer { s in
                        leads.withUnsafeBufferPointer { l in
                            let q = qb.baseAddress!, cp = UnsafeRawPointer(c.baseAddress!)
                            let op = UnsafeRawPointer(o.baseAddress!), sp = UnsafeRawPointer(s.baseAddress!)
                            // (An empty array's buffer may still have a base address.)
                            let lp = l.isEmpty ? nil : l.baseAddress.map(UnsafeRawPointer.init)
                            body { b in
                                let sums = Self.blockSums(q, codes: cp + b &* quads &* 32, quads: quads)
                                let off = op.loadUnaligned(fromByteOffset: b &* 32, as: SIMD8<Int32>.self)
                                let sc = sp.loadUnaligned(fromByteOffset: b &* 32, as: SIMD8<Float>.self)
                                let f = SIMD8<Float>(sums &- off) * sc * inv
                                guard let lp else { return f }
                                return f + lp.loadUnaligned(fromByteOffset: b &* 32, as: SIMD8<Float>.self) * qLead
                            }
                        }
                    }
                }
            }
        }
    }

    /// Σ_j (q_j + 64) · x_j for the eight rows of one block (the offset is removed by the caller).
    @inline(__always)
    static func blockSums(_ query: UnsafePointer<UInt8>, codes: UnsafeRawPointer, quads: Int) -> SIMD8<Int32> {
        #if arch(x86_64)
        let q = UnsafeRawPointer(query)
        let ones = _mm256_set1_epi16(1)
        @inline(__always) func step(_ j: Int) -> __m256i {
            _mm256_madd_epi16(_mm256_maddubs_epi16(q.loadUnaligned(fromByteOffset: j &* 32, as: __m256i.self),
                                                   codes.loadUnaligned(fromByteOffset: j &* 32, as: __m256i.self)), ones)
        }
        var a = _mm256_setzero_si256(), b = _mm256_setzero_si256()
        var j = 0
        if quads == 16 {
            // D = 64 (the model's embeddings): a fixed trip count the compiler unrolls.
            for k in 0..<8 {
                a = _mm256_add_epi32(a, step(2 * k))
                b = _mm256_add_epi32(b, step(2 * k + 1))
            }
        } else if quads == 8 {
            // 32 (the ranking's projected rows at D = 64).
            for k in 0..<4 {
                a = _mm256_add_epi32(a, step(2 * k))
                b = _mm256_add_epi32(b, step(2 * k + 1))
            }
        } else {
            while j + 2 <= quads {
                a = _mm256_add_epi32(a, step(j))
                b = _mm256_add_epi32(b, step(j + 1))
                j += 2
            }
            if j < quads { a = _mm256_add_epi32(a, step(j)) }
        }
        return unsafeBitCast(_mm256_add_epi32(a, b), to: SIMD8<Int32>.self)
        #else
        return blockSumsScalar(query, codes: codes.assumingMemoryBound(to: Int8.self), quads: quads)
        #endif
    }

    /// `blockSums` one product at a time (the reference for the vector kernel; any platform).
    static func blockSumsScalar(_ query: UnsafePointer<UInt8>, codes: UnsafePointer<Int8>, quads: Int) -> SIMD8<Int32> {
        var sums = SIMD8<Int32>()
        for j in 0..<quads {
            for r in 0..<8 {
                for l in 0..<4 {
                    sums[r] &+= Int32(query[j * 32 + r * 4 + l]) &* Int32(codes[j * 32 + r * 4 + l])
                }
            }
        }
        return sums
    }

    /// `dots` computed one product at a time from the stored codes (tests: the vector kernel
    /// must give exactly these values).
    func dotsScalar(_ query: Int8Query, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        guard let inv = query.inv else {
            for (o, i) in rows.enumerated() { out[o] = leadTerm(i, query) }
            return
        }
        for (o, i) in rows.enumerated() {
            var sum: Int32 = 0
            for j in 0..<(quads * 4) {
                sum &+= (Int32(query.bytes[(j >> 2) * 32 + (j & 3)]) - Self.queryOffset) &* Int32(codes[Self.offset(row: i, dim: j, quads: quads)])
            }
            out[o] = leads.isEmpty ? Float(sum) * scales[i] * inv : Float(sum) * scales[i] * inv + leads[i] * query.lead
        }
    }
}

/// A query prepared for `Int8Rows` (once per query, for any number of row sets of its
/// dimension): per group of four dimensions, the four values q_j + 64 (q_j in -64...64)
/// repeated eight times, the layout the kernel reads, and the factor that turns an integer sum
/// times a row's scale back into a dot product.
public struct Int8Query: Sendable {
    public let dimension: Int
    fileprivate(set) var bytes: [UInt8]
    /// nil for a zero or non-finite query: every dot product is 0 (plus the lead term).
    fileprivate(set) var inv: Float?
    /// The query's lead coordinate (`Int8Rows` with leads; 0 otherwise).
    public fileprivate(set) var lead: Float = 0

    public init(dimension: Int) {
        precondition(dimension > 0, "Int8Query: dimension \(dimension)")
        self.dimension = dimension
        self.bytes = [UInt8](repeating: UInt8(Int8Rows.queryOffset), count: (dimension + 3) / 4 * 32)
        self.inv = nil
    }

    public init(_ query: UnsafePointer<Float>, dimension: Int) {
        self.init(dimension: dimension)
        set(query)
    }

    /// Quantises `query` (`dimension` floats) into this value's storage; `lead` multiplies the
    /// rows' lead coordinates.
    public mutating func set(_ query: UnsafePointer<Float>, lead: Float = 0) {
        self.lead = lead
        let d = dimension
        var qmax: Float = 0
        for j in 0..<d { qmax = max(qmax, abs(query[j])) }
        guard qmax > 0, qmax.isFinite else { inv = nil; return }
        let qs = Float(Int8Rows.queryOffset) / qmax
        bytes.withUnsafeMutableBufferPointer { s in
            for j in 0..<d {
                let u = UInt8(clamping: Int32((query[j] * qs).rounded()) + Int8Rows.queryOffset)
                for r in 0..<8 { s[(j >> 2) * 32 + r * 4 + (j & 3)] = u }
            }
        }
        inv = 1 / qs
    }
}
