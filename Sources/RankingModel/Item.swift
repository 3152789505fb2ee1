/// One catalogue item (a line of items.jsonl), stored in embedding-row order in `ModelBundle`.
public struct Item: Sendable, Equatable {
    public var id: Int64
    /// Index into `Manifest.categories`.
    public var category: Int
    public var creatorId: Int64
    /// Milliseconds since the epoch.
    public var publishedAt: Int64
    public var quality: Double
    public var promoted: Bool

    public init(id: Int64, category: Int, creatorId: Int64, publishedAt: Int64, quality: Double, promoted: Bool) {
        self.id = id
        self.category = category
        self.creatorId = creatorId
        self.publishedAt = publishedAt
        self.quality = quality
        self.promoted = promoted
    }
}
