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
            let q = query.withUnsafeBufferPointer { Int8Query($0.baseAddress!, dimension: d) }
            out.withUnsafeMutableBufferPointer { q8.dots(q, rows: range, into: $0.baseAddress!) }
            let qn = query.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            for (o, i) in range.enumerated() {
                var exact = 0.0, xn = 0.0
                for j in 0..<d { exact += Double(rows[i * d + j]) * Double(query[j]); xn += Double(rows[i * d + j]) * Double(rows[i * d + j]) }
                let bound = qn * xn.squareRoot() * (Double(d).squareRoot() * (1.0 / 254 + 1.0 / 128) + Double(d) / (254 * 128)) * 1.001 + 1e-6
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
        let query = [Float](repeating: 1, count: d)
        let q = query.withUnsafeBufferPointer { Int8Query($0.baseAddress!, dimension: d) }
        out.withUnsafeMutableBufferPointer { q8.dots(q, rows: 0..<4, into: $0.baseAddress!) }
        #expect(out[0] == 0)
        #expect(out[2] > out[1] && out[1] > out[3])
        #expect(abs(out[2] - 8) < 0.01)
        let zero = [Float](repeating: 0, count: d)
        let z = zero.withUnsafeBufferPointer { Int8Query($0.baseAddress!, dimension: d) }
        out.withUnsafeMutableBufferPointer { q8.dots(z, rows: 0..<4, into: $0.baseAddress!) }
        #expect(out == [0, 0, 0, 0])
        var visited: [Int] = []
        q8.forEachAbove(z, rows: 0..<4, threshold: -1) { i, dot in visited.append(i); return dot }
        #expect(visited == [0])
    }

    @Test("with a float lead per row, every dot adds lead times the query's lead, in the vector kernel, one product at a time and forEachAbove, zero query included")
    func leadsAddTheirProduct() {
        for (d, seed) in [(32, UInt64(21)), (12, 22)] {
            let n = 203
            let (rows, query) = fixture(count: n, dimension: d, seed: seed)
            let leads = (0..<n).map { Float($0 % 17) / 8 - 1 }
            let plain = rows.withUnsafeBufferPointer { r in Int8Rows(count: n, dimension: d) { r.baseAddress! + $0 * d } }
            let led = rows.withUnsafeBufferPointer { r in Int8Rows(count: n, dimension: d, row: { r.baseAddress! + $0 * d }, lead: { leads[$0] }) }
            #expect(led.hasLead && !plain.hasLead)
            for zero in [false, true] {
                let qv = zero ? [Float](repeating: 0, count: d) : query
                var q = Int8Query(dimension: d)
                qv.withUnsafeBufferPointer { q.set($0.baseAddress!, lead: 0.75) }
                var p = Int8Query(dimension: d)
                qv.withUnsafeBufferPointer { p.set($0.baseAddress!) }
                for range in [0..<n, 3..<(n - 1), 5..<12, 8..<16] {
                    var base = [Float](repeating: .nan, count: range.count), fast = base, slow = base
                    base.withUnsafeMutableBufferPointer { plain.dots(p, rows: range, into: $0.baseAddress!) }
                    fast.withUnsafeMutableBufferPointer { led.dots(q, rows: range, into: $0.baseAddress!) }
                    slow.withUnsafeMutableBufferPointer { led.dots(q, rows: range, into: $0.baseAddress!, kernel: .scalar) }
                    #expect(fast == slow, "d \(d) rows \(range) zero \(zero)")
                    for (o, i) in range.enumerated() {
                        #expect(abs(fast[o] - (base[o] + leads[i] * 0.75)) <= 1e-5 * (1 + abs(fast[o])), "d \(d) row \(i) zero \(zero)")
                    }
                    var visited: [Int] = []
                    led.forEachAbove(q, rows: range, threshold: -.infinity) { i, dot in
                        #expect(dot == fast[i - range.lowerBound])
                        visited.append(i)
                        return -.infinity
                    }
                    #expect(visited == Array(range), "d \(d) rows \(range) zero \(zero)")
                }
            }
        }
    }

    @Test("the vector kernel gives exactly the one-product-at-a-time values, for any dimension and row range")
    func vectorEqualsScalar() {
        for (d, seed) in [(64, UInt64(5)), (16, 6), (48, 7), (128, 8), (37, 9), (6, 10)] {
            let n = 203
            let (rows, query) = fixture(count: n, dimension: d, seed: seed)
            let q8 = rows.withUnsafeBufferPointer { r in Int8Rows(count: n, dimension: d) { r.baseAddress! + $0 * d } }
            let q = query.withUnsafeBufferPointer { Int8Query($0.baseAddress!, dimension: d) }
            for range in [0..<n, 3..<(n - 1), 5..<12, 7..<8, 9..<9, 8..<16, 200..<203] {
                var fast = [Float](repeating: .nan, count: range.count)
                fast.withUnsafeMutableBufferPointer { q8.dots(q, rows: range, into: $0.baseAddress!) }
                var slow = [Float](repeating: .nan, count: range.count)
                slow.withUnsafeMutableBufferPointer { q8.dots(q, rows: range, into: $0.baseAddress!, kernel: .scalar) }
                #expect(fast == slow, "d \(d) rows \(range)")
            }
        }
    }

    @Test("the codes are the rounded rows over their scale, wherever a row falls in its block of eight")
    func codesAreStoredWhereRead() {
        let d = 11, n = 19
        let (rows, _) = fixture(count: n, dimension: d, seed: 12)
        let q8 = rows.withUnsafeBufferPointer { r in Int8Rows(count: n, dimension: d) { r.baseAddress! + $0 * d } }
        for i in 2..<n {
            let m = (0..<d).reduce(Float(0)) { max($0, abs(rows[i * d + $1])) }
            for j in 0..<d { #expect(q8.code(row: i, dim: j) == Int8((rows[i * d + j] / (m / 127)).rounded()), "row \(i) dim \(j)") }
        }
    }

    @Test("forEachAbove visits exactly the rows a walk over the dots in order would, with a threshold that rises")
    func forEachAboveEqualsWalkingTheDots() {
        for (d, seed) in [(64, UInt64(13)), (20, 14)] {
            let n = 301
            let (rows, query) = fixture(count: n, dimension: d, seed: seed)
            let q8 = rows.withUnsafeBufferPointer { r in Int8Rows(count: n, dimension: d) { r.baseAddress! + $0 * d } }
            let q = query.withUnsafeBufferPointer { Int8Query($0.baseAddress!, dimension: d) }
            for range in [0..<n, 3..<(n - 2), 9..<14, 17..<18, 40..<40] {
                for k in [1, 5, 12] {
                    // A top-k: the threshold is the k-th best dot once k rows were kept.
                    func keep(_ best: inout [Float], _ dot: Float) -> Float {
                        best.append(dot)
                        best.sort(by: >)
                        if best.count > k { best.removeLast() }
                        return best.count == k ? best[k - 1] : -.infinity
                    }
                    var dots = [Float](repeating: 0, count: range.count)
                    dots.withUnsafeMutableBufferPointer { q8.dots(q, rows: range, into: $0.baseAddress!) }
                    var expected: [Int] = [], bestA: [Float] = [], t = -Float.infinity
                    for (o, i) in range.enumerated() where dots[o] > t { expected.append(i); t = keep(&bestA, dots[o]) }
                    var visited: [Int] = [], bestB: [Float] = []
                    q8.forEachAbove(q, rows: range, threshold: -.infinity) { i, dot in
                        #expect(dot == dots[i - range.lowerBound])
                        visited.append(i)
                        return keep(&bestB, dot)
                    }
                    #expect(visited == expected, "d \(d) rows \(range) k \(k)")
                }
            }
        }
    }
}

@Suite("Lane bars")
struct LaneBarTests {
    @Test("kthLargest of eight floats and of 32 16-bit sums counts equal lanes as often as they occur, for every k, with many ties")
    func kthLargestMatchesSorting() {
        var rng = SplitMix64(seed: 23)
        for _ in 0..<2000 {
            let f = SIMD8<Float>((0..<8).map { _ in Float(Int(rng.next() % 6) - 2) })
            let sortedF = (0..<8).map { f[$0] }.sorted(by: >)
            for k in 1...8 { #expect(kthLargest(f, k) == sortedF[k - 1], "\(f) k \(k)") }
            let a = SIMD16<UInt16>((0..<16).map { _ in UInt16(rng.next() % 5) * 1000 })
            let b = SIMD16<UInt16>((0..<16).map { _ in UInt16(rng.next() % 5) * 1000 })
            let sortedU = ((0..<16).map { a[$0] } + (0..<16).map { b[$0] }).sorted(by: >)
            for k in [1, 2, 5, 8, 16, 31, 32] { #expect(kthLargest(a, b, k) == sortedU[k - 1], "k \(k)") }
        }
    }
}
