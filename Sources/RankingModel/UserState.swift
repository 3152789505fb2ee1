/// Where an activity record came from: its Kafka partition and offset (redelivery detection).
public struct SourcePosition: Sendable, Hashable {
    public var partition: Int32
    public var offset: Int64

    public init(partition: Int32, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}

/// An `impression` event kept for the recently-shown rule: the item and when it was shown.
public struct Impression: Sendable, Hashable {
    public var itemId: Int64
    public var ts: Int64

    public init(itemId: Int64, ts: Int64) {
        self.itemId = itemId
        self.ts = ts
    }
}

/// One user's incremental state (contract section 2): decayed sums as of `tLast`, the last
/// 25 h of impressions, and the redelivery marks. `StateUpdater` advances it; `FeatureBuilder`
/// turns it into the tower's input; `jsonBytes()`/`decode` are the L4 / `user-state` encoding.
public struct UserState: Sendable, Equatable {
    public static let version = 1
    /// How many applied event ids are remembered for duplicate detection.
    public static let recentEventIdLimit = 16
    /// Impressions older than `tLast` minus this are dropped after every event.
    public static let impressionRetentionMs: Int64 = 25 * 3_600_000

    public var userId: Int64
    /// Time (ms) the sums are decayed to: the latest in-order event's ts.
    public var tLast: Int64
    /// S: the decayed weighted sum of item embeddings (D values).
    public var embeddingSum: [Double]
    /// c: the decayed weight per category (C values).
    public var categoryWeights: [Double]
    /// n: the decayed count per action, in the manifest's action order (A values).
    public var actionCounts: [Double]
    /// (item, ts) of impressions, insertion order, pruned to the retention window.
    public var impressions: [Impression]
    /// Partition/offset of the last applied record that came with one.
    public var source: SourcePosition?
    /// event_ids of the last applied events, oldest first, at most `recentEventIdLimit`.
    public var recentEventIds: [String]

    public init(userId: Int64, tLast: Int64, embeddingSum: [Double], categoryWeights: [Double],
                actionCounts: [Double], impressions: [Impression] = [], source: SourcePosition? = nil,
                recentEventIds: [String] = []) {
        self.userId = userId
        self.tLast = tLast
        self.embeddingSum = embeddingSum
        self.categoryWeights = categoryWeights
        self.actionCounts = actionCounts
        self.impressions = impressions
        self.source = source
        self.recentEventIds = recentEventIds
    }

    /// A user's state before their first event at `t`: all sums zero.
    public init(userId: Int64, firstEventAt t: Int64, manifest: Manifest) {
        self.init(userId: userId, tLast: t,
                  embeddingSum: [Double](repeating: 0, count: manifest.embeddingDimension),
                  categoryWeights: [Double](repeating: 0, count: manifest.categoryCount),
                  actionCounts: [Double](repeating: 0, count: manifest.actionCount))
    }

    /// Whether the dimensions match the manifest's D, C and A.
    public func matches(_ manifest: Manifest) -> Bool {
        embeddingSum.count == manifest.embeddingDimension && categoryWeights.count == manifest.categoryCount
            && actionCounts.count == manifest.actionCount
    }

    /// Items with an impression at ts in [T - window, T] (the recently-shown rule: 24 h).
    public func impressedItems(at t: Int64, windowMs: Int64 = 24 * 3_600_000) -> Set<Int64> {
        var out = Set<Int64>()
        for i in impressions where i.ts <= t && i.ts >= t - windowMs { out.insert(i.itemId) }
        return out
    }
}
