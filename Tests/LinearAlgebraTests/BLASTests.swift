import LinearAlgebra
import Testing

/// A seeded generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomMatrix(_ rows: Int, _ cols: Int, _ rng: inout SplitMix64) -> Matrix {
    Matrix(rows: rows, columns: cols, values: (0..<rows * cols).map { _ in Float.random(in: -1...1, using: &rng) })
}

func naive(_ a: Matrix, _ b: Matrix, transA: Bool, transB: Bool) -> Matrix {
    let m = transA ? a.columns : a.rows
    let k = transA ? a.rows : a.columns
    let n = transB ? b.rows : b.columns
    var c = Matrix(rows: m, columns: n)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let av = transA ? a[p, i] : a[i, p]
                let bv = transB ? b[j, p] : b[p, j]
                s += Double(av) * Double(bv)
            }
            c[i, j] = Float(s)
        }
    }
    return c
}

@Suite("BLAS wrappers")
struct BLASTests {
    @Test("sgemm equals a naive triple loop within 1e-4 on random shapes, all transpose combinations",
          arguments: [(1, 1, 1), (1, 64, 99), (7, 3, 5), (64, 1, 64), (33, 17, 129), (256, 128, 99), (2, 300, 1)])
    func sgemmMatchesNaive(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = SplitMix64(state: UInt64(m * 1_000_003 + n * 1009 + k))
        for transA in [false, true] {
            for transB in [false, true] {
                let a = transA ? randomMatrix(k, m, &rng) : randomMatrix(m, k, &rng)
                let b = transB ? randomMatrix(n, k, &rng) : randomMatrix(k, n, &rng)
                var c = Matrix(rows: m, columns: n)
                a.values.withUnsafeBufferPointer { ap in
                    b.values.withUnsafeBufferPointer { bp in
                        c.values.withUnsafeMutableBufferPointer { cp in
                            BLAS.sgemm(transA ? .transposed : .none, transB ? .transposed : .none,
                                       m: m, n: n, k: k, a: ap, lda: a.columns, b: bp, ldb: b.columns, c: cp, ldc: n)
                        }
                    }
                }
                let expected = naive(a, b, transA: transA, transB: transB)
                let maxDiff = zip(c.values, expected.values).map { abs($0 - $1) }.max() ?? 0
                #expect(maxDiff < 1e-4, "m=\(m) n=\(n) k=\(k) transA=\(transA) transB=\(transB): \(maxDiff)")
            }
        }
    }

    @Test("sgemm with beta accumulates into C")
    func sgemmBeta() {
        let a = Matrix(rows: 1, columns: 2, values: [1, 2])
        let b = Matrix(rows: 2, columns: 1, values: [3, 4])
        var c = Matrix(rows: 1, columns: 1, values: [10])
        a.values.withUnsafeBufferPointer { ap in
            b.values.withUnsafeBufferPointer { bp in
                c.values.withUnsafeMutableBufferPointer { cp in
                    BLAS.sgemm(.none, .none, m: 1, n: 1, k: 2, alpha: 2, a: ap, lda: 2, b: bp, ldb: 1, beta: 0.5, c: cp, ldc: 1)
                }
            }
        }
        #expect(c.values == [2 * 11 + 5])
    }

    @Test("sgemv equals the matching sgemm, both orientations")
    func sgemvMatchesGemm() {
        var rng = SplitMix64(state: 42)
        let a = randomMatrix(37, 23, &rng)
        let x = (0..<23).map { _ in Float.random(in: -1...1, using: &rng) }
        let xt = (0..<37).map { _ in Float.random(in: -1...1, using: &rng) }
        var y = [Float](repeating: 0, count: 37)
        var yt = [Float](repeating: 0, count: 23)
        a.values.withUnsafeBufferPointer { ap in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { BLAS.sgemv(.none, rows: 37, cols: 23, a: ap, lda: 23, x: xp, y: $0) }
            }
            xt.withUnsafeBufferPointer { xp in
                yt.withUnsafeMutableBufferPointer { BLAS.sgemv(.transposed, rows: 37, cols: 23, a: ap, lda: 23, x: xp, y: $0) }
            }
        }
        let ref = naive(a, Matrix(rows: 23, columns: 1, values: x), transA: false, transB: false)
        let reft = naive(a, Matrix(rows: 37, columns: 1, values: xt), transA: true, transB: false)
        #expect(zip(y, ref.values).allSatisfy { abs($0 - $1) < 1e-4 })
        #expect(zip(yt, reft.values).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test("Matrix.multiplied uses the same product")
    func matrixMultiply() {
        var rng = SplitMix64(state: 7)
        let a = randomMatrix(5, 9, &rng), b = randomMatrix(4, 9, &rng)
        let c = a.multiplied(by: b, transposingOther: true)
        let ref = naive(a, b, transA: false, transB: true)
        #expect(c.rows == 5 && c.columns == 4)
        #expect(zip(c.values, ref.values).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test("the thread count is settable")
    func threads() {
        let before = BLAS.threadCount
        BLAS.threadCount = 1
        #expect(BLAS.threadCount == 1)
        BLAS.threadCount = before
    }

    @Test("VectorMath.dot equals the Double reference for lengths around the SIMD widths")
    func dot() {
        var rng = SplitMix64(state: 3)
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 64, 100] {
            let x = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            let y = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            let ref = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(Double(VectorMath.dot(x, y)) - ref) < 1e-5, "n=\(n)")
        }
        var v: [Float] = [3, 4]
        #expect(VectorMath.normalize(&v) == 5)
        #expect(v == [0.6, 0.8])
    }
}
