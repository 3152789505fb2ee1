import LinearAlgebra

/// The user tower: Linear, ReLU, ..., Linear (no ReLU after the last), then L2 normalisation.
/// One user runs an sgemv per layer; a batch runs an sgemm per layer with one row per user.
/// Weights are small and owned here (copied out of the bundle at load).
public struct UserTower: Sendable {
    public struct Layer: Sendable, Equatable {
        public let inputs: Int
        public let outputs: Int
        /// [outputs, inputs], row-major (PyTorch's nn.Linear layout).
        public let weight: [Float]
        public let bias: [Float]

        public init(inputs: Int, outputs: Int, weight: [Float], bias: [Float]) {
            precondition(inputs > 0 && outputs > 0, "UserTower.Layer: empty layer \(outputs)×\(inputs)")
            precondition(weight.count == inputs * outputs, "UserTower.Layer: \(weight.count) weights for \(outputs)×\(inputs)")
            precondition(bias.count == outputs, "UserTower.Layer: \(bias.count) biases for \(outputs) outputs")
            self.inputs = inputs
            self.outputs = outputs
            self.weight = weight
            self.bias = bias
        }
    }

    public let layers: [Layer]

    public init(layers: [Layer]) {
        precondition(!layers.isEmpty, "UserTower: no layers")
        for (a, b) in zip(layers, layers.dropFirst()) {
            precondition(a.outputs == b.inputs, "UserTower: a layer of \(a.outputs) outputs feeds one of \(b.inputs) inputs")
        }
        self.layers = layers
    }

    /// F: the feature width.
    public var inputWidth: Int { layers[0].inputs }
    /// D: the user embedding width.
    public var outputWidth: Int { layers[layers.count - 1].outputs }
    /// The widest hidden activation (0 for a single-layer tower).
    var hiddenWidth: Int { layers.dropLast().map(\.outputs).max() ?? 0 }

    // MARK: one user

    /// u = normalise(tower(x)). Allocates nothing: activations live in `scratch`.
    public func embed(_ x: UnsafeBufferPointer<Float>, into u: UnsafeMutableBufferPointer<Float>, scratch: TowerScratch) {
        precondition(x.count >= inputWidth, "UserTower.embed: x has \(x.count) entries, needs \(inputWidth)")
        precondition(u.count >= outputWidth, "UserTower.embed: u has \(u.count) entries, needs \(outputWidth)")
        scratch.reserve(rows: 1, width: hiddenWidth)
        var input = UnsafeBufferPointer(rebasing: x[0..<inputWidth])
        for (k, layer) in layers.enumerated() {
            let last = k == layers.count - 1
            let out = last ? UnsafeMutableBufferPointer(rebasing: u[0..<layer.outputs])
                           : UnsafeMutableBufferPointer(rebasing: scratch.buffer(k % 2)[0..<layer.outputs])
            layer.bias.withUnsafeBufferPointer { b in out.baseAddress!.update(from: b.baseAddress!, count: layer.outputs) }
            layer.weight.withUnsafeBufferPointer { w in
                BLAS.sgemv(.none, rows: layer.outputs, cols: layer.inputs, a: w, lda: layer.inputs,
                           x: input, beta: 1, y: out)
            }
            if !last { Self.relu(out) }
            input = UnsafeBufferPointer(out)
        }
        Self.normalizeRows(UnsafeMutableBufferPointer(rebasing: u[0..<outputWidth]), rows: 1, width: outputWidth)
    }

    public func embed(_ x: [Float]) -> [Float] {
        var u = [Float](repeating: 0, count: outputWidth)
        let scratch = TowerScratch()
        x.withUnsafeBufferPointer { xb in u.withUnsafeMutableBufferPointer { embed(xb, into: $0, scratch: scratch) } }
        return u
    }

    // MARK: a batch

    /// U[rows × D] = normalise(tower(X[rows × F])) row by row, one sgemm per layer.
    public func embedBatch(_ x: UnsafeBufferPointer<Float>, rows: Int,
                           into u: UnsafeMutableBufferPointer<Float>, scratch: TowerScratch) {
        precondition(rows >= 0, "UserTower.embedBatch: negative row count")
        precondition(x.count >= rows * inputWidth, "UserTower.embedBatch: X has \(x.count) entries, needs \(rows * inputWidth)")
        precondition(u.count >= rows * outputWidth, "UserTower.embedBatch: U has \(u.count) entries, needs \(rows * outputWidth)")
        if rows == 0 { return }
        scratch.reserve(rows: rows, width: hiddenWidth)
        var input = UnsafeBufferPointer(rebasing: x[0..<(rows * inputWidth)])
        for (k, layer) in layers.enumerated() {
            let last = k == layers.count - 1
            let n = rows * layer.outputs
            let out = last ? UnsafeMutableBufferPointer(rebasing: u[0..<n])
                           : UnsafeMutableBufferPointer(rebasing: scratch.buffer(k % 2)[0..<n])
            layer.bias.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    (out.baseAddress! + r * layer.outputs).update(from: b.baseAddress!, count: layer.outputs)
                }
            }
            layer.weight.withUnsafeBufferPointer { w in
                BLAS.sgemm(.none, .transposed, m: rows, n: layer.outputs, k: layer.inputs,
                           a: input, lda: layer.inputs, b: w, ldb: layer.inputs,
                           beta: 1, c: out, ldc: layer.outputs)
            }
            if !last { Self.relu(out) }
            input = UnsafeBufferPointer(out)
        }
        Self.normalizeRows(UnsafeMutableBufferPointer(rebasing: u[0..<(rows * outputWidth)]), rows: rows, width: outputWidth)
    }

    public func embedBatch(_ x: Matrix) -> Matrix {
        precondition(x.columns == inputWidth, "UserTower.embedBatch: X has \(x.columns) columns, needs \(inputWidth)")
        var u = Matrix(rows: x.rows, columns: outputWidth)
        let scratch = TowerScratch()
        x.values.withUnsafeBufferPointer { xb in
            u.values.withUnsafeMutableBufferPointer { embedBatch(xb, rows: x.rows, into: $0, scratch: scratch) }
        }
        return u
    }

    // MARK: kernels

    @inline(__always)
    static func relu(_ v: UnsafeMutableBufferPointer<Float>) {
        for i in v.indices where v[i] < 0 { v[i] = 0 }
    }

    /// Each row scaled to unit L2 norm (norm accumulated in Double); all-zero rows stay zero.
    static func normalizeRows(_ v: UnsafeMutableBufferPointer<Float>, rows: Int, width: Int) {
        for r in 0..<rows {
            let row = UnsafeMutableBufferPointer(rebasing: v[(r * width)..<((r + 1) * width)])
            var ss = 0.0
            for e in row { ss += Double(e) * Double(e) }
            let norm = ss.squareRoot()
            guard norm > 0 else { continue }
            for i in row.indices { row[i] = Float(Double(row[i]) / norm) }
        }
    }
}

/// Reusable activation buffers for `UserTower` (and `UserEncoder`). Not thread-safe: keep one
/// per thread/task. Buffers only grow, so steady-state calls allocate nothing.
public final class TowerScratch {
    private var buffers: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>)
    private var capacity = 0

    public init() {
        buffers = (.allocate(capacity: 0), .allocate(capacity: 0))
    }

    func reserve(rows: Int, width: Int) {
        let needed = rows * width
        guard needed > capacity else { return }
        buffers.0.deallocate()
        buffers.1.deallocate()
        buffers = (.allocate(capacity: needed), .allocate(capacity: needed))
        buffers.0.initialize(repeating: 0)
        buffers.1.initialize(repeating: 0)
        capacity = needed
    }

    func buffer(_ i: Int) -> UnsafeMutableBufferPointer<Float> { i == 0 ? buffers.0 : buffers.1 }

    deinit {
        buffers.0.deallocate()
        buffers.1.deallocate()
    }
}
