/// A dense row-major float32 matrix that owns its storage.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && columns >= 0, "Matrix: negative shape")
        self.rows = rows
        self.columns = columns
        self.values = [Float](repeating: value, count: rows * columns)
    }

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns,
                     "Matrix: \(values.count) values for a \(rows)×\(columns) matrix")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    /// The row as a new array.
    public func row(_ i: Int) -> [Float] { Array(values[i * columns..<(i + 1) * columns]) }

    /// self · op(other) through sgemm.
    public func multiplied(by other: Matrix, transposingOther: Bool = false) -> Matrix {
        let n = transposingOther ? other.rows : other.columns
        let k = transposingOther ? other.columns : other.rows
        precondition(columns == k, "multiply: \(rows)×\(columns) by \(transposingOther ? "transposed " : "")\(other.rows)×\(other.columns)")
        var out = Matrix(rows: rows, columns: n)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                out.values.withUnsafeMutableBufferPointer { c in
                    BLAS.sgemm(.none, transposingOther ? .transposed : .none,
                               m: rows, n: n, k: k,
                               a: a, lda: max(1, columns), b: b, ldb: max(1, other.columns),
                               c: c, ldc: max(1, n))
                }
            }
        }
        return out
    }
}
