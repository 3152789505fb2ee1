import Testing
@testable import VectorIndex

@Suite("int8 rows for approximate inner products")
struct Int8RowsTests {
    /// Rows of mixed magnitudes (including an all-zero row and one with a single large entry)
    /// and their exact float64 dot products with a query.
    private func fixture(count: Int, dimension d: Int, seed: UInt64) -> (rows: [Float], query: [Float]) {
        var rng = SplitMix64(seed: seed)
        func uniform() -> Float { Float(Int(rng.next() % 20_001) - 10_000) / 10_000 }
        var rows = (0..<(count * d)).map { _ in uniform() }
        for j in 0..<d { rows[j] = 0 }                      // row 0: all zero
        for j in 0..<d { rows[d + j] = j == 3 ? 40 : uniform() * 0.01 }   // row 1: one spike
        for i in 2..<count { let s = Float(i % 7 + 1) * 0.3; for j in 0..<d { rows[i * d + j] *= s } }
        return (rows, (0..<d).map { _ in uniform() * 2 })
    }

    @Test("approximate dots are within the documented error of the exact ones, for any dimension and range")
    func dotsWithinBound() {
        for (d, seed) in [(64, UInt64(1)), (37, 2), (8, 3), (300, 4)] {
            let n = 500
            let (rows, query) = fixture(count: n, dimension: d, seed: seed)
            let q8 = rows.withUnsafeBufferPointer { r in Int8Rows(count: n, dimension: d) { r.baseAddress! + $0 * d } }
            #expect(q8.count == n && q8.dimension == d)
            let range = 3..<(n - 5)
            var out = [Float](repeating: .nan, count: range.count)
            var scratch: [Int16] = []
            query.withUnsafeBufferPointer { q in out.withUnsafeMutableBufferPointer { q8.dots(q.baseAddress!, rows: range, scratch: &scratch, into: $0.baseAddress!) } }
            let qn = query.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            for (o, i) in range.enumerated() {
                var exact = 0.0, xn = 0.0
                for j in 0..<d { exact += Double(rows[i * d + j]) * Double(query[j]); xn += Double(rows[i * d + j]) * Double(rows[i * d + j]) }
                let bound = qn * xn.squareRoot() * Double(d).squareRoot() * (1.0 / 254 + 1.0 / 65_534) * 1.001 + 1e-6
                #expect(abs(Double(out[o]) - exact) <= bound, "d \(d) row \(i): \(out[o]) vs \(exact), bound \(bound)")
            }
        }
    }

    @Test("zero rows and a zero query give zero; the order of well-separated rows is kept")
    func zerosAndOrder() {
        let d = 16
        var rows = [Float](repeating: 0, count: 4 * d)
        for j in 0..<d { rows[d + j] = 0.1; rows[2 * d + j] = 0.5; rows[3 * d + j] = -0.2 }
        let q8 = rows.withUnsafeBufferPointer { r in Int8Rows(count: 4, dimension: d) { r.baseAddress! + $0 * d } }
        var out = [Float](repeating: .nan, count: 4)
        var scratch: [Int16] = []
        let query = [Float](repeating: 1, count: d)
        query.withUnsafeBufferPointer { q in out.withUnsafeMutableBufferPointer { q8.dots(q.baseAddress!, rows: 0..<4, scratch: &scratch, into: $0.baseAddress!) } }
        #expect(out[0] == 0)
        #expect(out[2] > out[1] && out[1] > out[3])
        #expect(abs(out[2] - 8) < 0.01)
        let zero = [Float](repeating: 0, count: d)
        zero.withUnsafeBufferPointer { q in out.withUnsafeMutableBufferPointer { q8.dots(q.baseAddress!, rows: 0..<4, scratch: &scratch, into: $0.baseAddress!) } }
        #expect(out == [0, 0, 0, 0])
    }

    @Test("the vector kernel gives exactly the one-row-at-a-time values, for any row range")
    func vectorEqualsScalar() {
        for (d, seed) in [(64, UInt64(5)), (16, 6), (48, 7), (128, 8)] {
            let n = 203
            let (rows, query) = fixture(count: n, dimension: d, seed: seed)
            let q8 = rows.withUnsafeBufferPointer { r in Int8Rows(count: n, dimension: d) { r.baseAddress! + $0 * d } }
            var scratch: [Int16] = []
            for range in [0..<n, 3..<(n - 1), 5..<12, 7..<8, 9..<9] {
                var fast = [Float](repeating: .nan, count: range.count)
                query.withUnsafeBufferPointer { q in fast.withUnsafeMutableBufferPointer { q8.dots(q.baseAddress!, rows: range, scratch: &scratch, into: $0.baseAddress!) } }
                var slow = [Float](repeating: .nan, count: range.count)
                q8.withStorage { codes, scales in
                    let qmax = query.reduce(Float(0)) { max($0, abs($1)) }
                    let qs = Float(min(32_767, Int(Int32.max) / (127 * d))) / qmax
                    let q16 = query.map { Int16(($0 * qs).rounded()) }
                    q16.withUnsafeBufferPointer { q in slow.withUnsafeMutableBufferPointer {
                        Int8Rows.dotsScalar(q.baseAddress!, codes: codes, scales: scales, dimension: d, rows: range, inv: 1 / qs, into: $0.baseAddress!)
                    } }
                }
                #expect(fast == slow, "d \(d) rows \(range)")
            }
        }
    }
}
