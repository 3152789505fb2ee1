/// One search result: the caller's id and its inner-product score (higher is better).
public struct Neighbor: Sendable, Equatable, CustomStringConvertible {
    public var id: Int64
    public var score: Float

    public init(id: Int64, score: Float) {
        self.id = id
        self.score = score
    }

    public var description: String { "(\(id), \(score))" }

    /// Result order: higher score first, then lower id.
    @inline(__always)
    static func precedes(_ a: Neighbor, _ b: Neighbor) -> Bool {
        a.score != b.score ? a.score > b.score : a.id < b.id
    }
}
