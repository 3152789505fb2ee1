import LinearAlgebra

/// What the tower needs to embed one user: the state (nil = cold start), the ranking time T
/// (ms) and the request's device.
public struct UserContext: Sendable {
    public var state: UserState?
    public var at: Int64
    public var device: String?

    public init(state: UserState?, at: Int64, device: String?) {
        self.state = state
        self.at = at
        self.device = device
    }
}

/// Features + tower for one user or a batch, with reusable buffers: keep one per thread/task
/// (it is not thread-safe). After the first call of a given batch size, calls allocate nothing
/// except the returned arrays of the convenience overloads.
public final class UserEncoder {
    public let features: FeatureBuilder
    public let tower: UserTower
    private let scratch = TowerScratch()
    private var x: UnsafeMutableBufferPointer<Float>

    public init(manifest: Manifest, tower: UserTower) {
        precondition(tower.inputWidth == manifest.featureCount && tower.outputWidth == manifest.embeddingDimension,
                     "UserEncoder: tower \(tower.inputWidth)->\(tower.outputWidth) does not fit manifest F=\(manifest.featureCount), D=\(manifest.embeddingDimension)")
        self.features = FeatureBuilder(manifest: manifest)
        self.tower = tower
        self.x = .allocate(capacity: manifest.featureCount)
        self.x.initialize(repeating: 0)
    }

    public convenience init(bundle: ModelBundle) {
        self.init(manifest: bundle.manifest, tower: bundle.tower)
    }

    deinit { x.deallocate() }

    /// D.
    public var dimension: Int { tower.outputWidth }

    /// u for one user into `u[0..<D]` (sgemv per layer). Allocates nothing.
    public func embed(_ user: UserContext, into u: UnsafeMutableBufferPointer<Float>) {
        features.build(state: user.state, at: user.at, device: user.device, into: x)
        tower.embed(UnsafeBufferPointer(x), into: u, scratch: scratch)
    }

    public func embed(state: UserState?, at t: Int64, device: String?, into u: UnsafeMutableBufferPointer<Float>) {
        features.build(state: state, at: t, device: device, into: x)
        tower.embed(UnsafeBufferPointer(x), into: u, scratch: scratch)
    }

    public func embed(state: UserState?, at t: Int64, device: String?) -> [Float] {
        var u = [Float](repeating: 0, count: dimension)
        u.withUnsafeMutableBufferPointer { embed(state: state, at: t, device: device, into: $0) }
        return u
    }

    /// u for each user, one row each (sgemm per layer).
    public func embedBatch(_ users: [UserContext], into u: UnsafeMutableBufferPointer<Float>) {
        let f = features.featureCount
        if batchX.count < users.count * f {
            batchX = [Float](repeating: 0, count: users.count * f)
        }
        batchX.withUnsafeMutableBufferPointer { xb in
            for (r, user) in users.enumerated() {
                features.build(state: user.state, at: user.at, device: user.device,
                               into: UnsafeMutableBufferPointer(rebasing: xb[(r * f)..<((r + 1) * f)]))
            }
            tower.embedBatch(UnsafeBufferPointer(xb), rows: users.count, into: u, scratch: scratch)
        }
    }

    public func embedBatch(_ users: [UserContext]) -> Matrix {
        var m = Matrix(rows: users.count, columns: dimension)
        m.values.withUnsafeMutableBufferPointer { embedBatch(users, into: $0) }
        return m
    }

    private var batchX: [Float] = []
}
