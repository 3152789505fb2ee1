import COpenBLAS

/// Whether a matrix operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Shape-checked single-precision BLAS over row-major buffers (OpenBLAS).
///
/// This is the only place in FeedRank that touches `cblas_*`. Buffers are Swift-owned;
/// pointers are only used for the duration of a call. Shape mismatches are programming
/// errors and trap, like an out-of-range array index.
public enum BLAS {
    /// OpenBLAS's worker thread count (process-wide). FeedRank defaults to 1 and
    /// parallelises at a coarser grain itself.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set {
            precondition(newValue >= 1, "BLAS thread count must be >= 1")
            openblas_set_num_threads(Int32(newValue))
        }
    }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major.
    /// op(A) is m×k, op(B) is k×n; lda/ldb/ldc are row strides of the stored matrices.
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, lda: Int,
        b: UnsafeBufferPointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutableBufferPointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dimension")
        if m == 0 || n == 0 { return }
        let (aRows, aCols) = transA == .none ? (m, k) : (k, m)
        let (bRows, bCols) = transB == .none ? (k, n) : (n, k)
        checkStorage("A", a.count, rows: aRows, cols: aCols, ld: lda)
        checkStorage("B", b.count, rows: bRows, cols: bCols, ld: ldb)
        checkStorage("C", c.count, rows: m, cols: n, ld: ldc)
        if k == 0 {
            // BLAS leaves C scaled by beta; make that explicit for an empty product.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas,
                    blasint(m), blasint(n), blasint(k), alpha,
                    a.baseAddress, blasint(lda), b.baseAddress, blasint(ldb),
                    beta, c.baseAddress, blasint(ldc))
    }

    /// Eigenvalues and orthonormal eigenvectors of the symmetric n×n matrix `a` (LAPACK
    /// `ssyev`): values in descending order, `vectors[k * n ..< (k + 1) * n]` the unit vector of
    /// `values[k]`. Traps when LAPACK reports a failure (it converges for any finite input).
    public static func symmetricEigen(_ a: [Float], n: Int) -> (values: [Float], vectors: [Float]) {
        precondition(n > 0 && a.count == n * n, "symmetricEigen: \(a.count) entries for n = \(n)")
        precondition(a.allSatisfy(\.isFinite), "symmetricEigen: non-finite entry")
        // Symmetric, so row- and column-major are the same matrix; LAPACK leaves eigenvector k
        // in column k, i.e. row k of this row-major buffer.
        var m = a
        var w = [Float](repeating: 0, count: n)
        var nn = Int32(n), lda = Int32(n), info: Int32 = 0
        var jobz = CChar(UInt8(ascii: "V")), uplo = CChar(UInt8(ascii: "U"))
        var lwork = Int32(-1)
        var query: Float = 0
        ssyev_(&jobz, &uplo, &nn, &m, &lda, &w, &query, &lwork, &info)
        lwork = max(Int32(query), Int32(3 * n))
        var work = [Float](repeating: 0, count: Int(lwork))
        ssyev_(&jobz, &uplo, &nn, &m, &lda, &w, &work, &lwork, &info)
        precondition(info == 0, "symmetricEigen: LAPACK ssyev failed (info \(info))")
        // Ascending from LAPACK; descending here.
        var values = [Float](repeating: 0, count: n), vectors = [Float](repeating: 0, count: n * n)
        for k in 0..<n {
            values[k] = w[n - 1 - k]
            for j in 0..<n { vectors[k * n + j] = m[(n - 1 - k) * n + j] }
        }
        return (values, vectors)
    }

    /// y[m'] = alpha · op(A) · x + beta · y, A stored row-major as rows×cols.
    /// With `.none`, x has `cols` entries and y has `rows`; with `.transposed`, the reverse.
    public static func sgemv(
        _ trans: Transpose, rows: Int, cols: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, lda: Int,
        x: UnsafeBufferPointer<Float>, beta: Float = 0,
        y: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(rows >= 0 && cols >= 0, "sgemv: negative dimension")
        let (xn, yn) = trans == .none ? (cols, rows) : (rows, cols)
        precondition(x.count >= xn, "sgemv: x has \(x.count) entries, needs \(xn)")
        precondition(y.count >= yn, "sgemv: y has \(y.count) entries, needs \(yn)")
        if yn == 0 { return }
        if xn == 0 { for i in 0..<yn { y[i] *= beta }; return }
        checkStorage("A", a.count, rows: rows, cols: cols, ld: lda)
        cblas_sgemv(CblasRowMajor, trans.cblas, blasint(rows), blasint(cols), alpha,
                    a.baseAddress, blasint(lda), x.baseAddress, 1, beta, y.baseAddress, 1)
    }

    private static func checkStorage(_ name: String, _ count: Int, rows: Int, cols: Int, ld: Int) {
        precondition(ld >= max(1, cols), "\(name): leading dimension \(ld) < columns \(cols)")
        let needed = rows == 0 ? 0 : (rows - 1) * ld + cols
        precondition(count >= needed, "\(name): buffer holds \(count) floats, a \(rows)×\(cols) matrix with stride \(ld) needs \(needed)")
    }
}
