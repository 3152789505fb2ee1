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
    public func dots(_ query: UnsafePointer<Float>, rows: Range<Int>, scratch: inout [Int16],
                     into out: UnsafeMutablePointer<Float>) {
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
                    let q = qb.baseAddress!
                    for (o, i) in rows.enumerated() {
                        let c = cb.baseAddress! + i * d
                        var acc: Int32 = 0
                        for j in 0..<d { acc &+= Int32(c[j]) &* Int32(q[j]) }
                        out[o] = Float(acc) * sb[i] * inv
                    }
                }
            }
        }
    }
}
