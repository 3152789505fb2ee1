/// The business rules of contract section 3, as configuration (defaults per contract).
public struct RankingRules: Sendable, Equatable {
    /// Rule 4: at most this many organic items per category.
    public var categoryCap = 3
    /// Rule 4: at most this many organic items per creator.
    public var creatorCap = 2
    /// Rule 2: the multiplier for fresh items.
    public var freshnessBoost = 1.2
    /// Rule 2: an item is fresh when 0 <= T - published_at < this.
    public var freshWindowMs: Int64 = 24 * 3_600_000
    /// Rule 3: items below this quality never appear.
    public var qualityFloor = 0.5
    /// Rule 3: items the user had an impression of in [T - window, T] never appear.
    public var impressionWindowMs: Int64 = 24 * 3_600_000
    /// Rule 5: 1-based ranks reserved for promoted items (ascending).
    public var promotedSlots: [Int] = [3, 10, 20]

    public init() {}

    /// Whether `rank` (1-based) is a promoted slot.
    @inlinable
    public func isPromotedSlot(_ rank: Int) -> Bool { promotedSlots.contains(rank) }
}

/// How organic candidates are found.
public enum RetrievalMode: Sendable, Equatable {
    /// IVF-PQ per-category search, candidates re-scored exactly (the production path).
    case index
    /// Every item scored exactly (`feedrank rank --exact`, parity checks).
    case exact
}

/// Retrieval knobs (per-category IVF-PQ search).
public struct RetrievalSettings: Sendable, Equatable {
    /// Candidates fetched per category in the first round (then re-scored exactly). 16: the
    /// final lists' overlap with the exact lists did not move between 12, 16 and 24 at 100k
    /// items (0.9990 / 0.9940 over 1,000 users) nor at 1M (0.9995 / 0.9887 at 16 over 400
    /// users; 0.9868 at 12); nprobe limits it, not k. BENCHMARKS.md has the runs.
    public var candidatesPerCategory = 16
    /// Inverted lists probed per category in the first round. 4 keeps the final lists' overlap
    /// with the exact lists at 0.989-0.9995 over 1,000 users at 100k and 1M items (8: 0.997-0.9999)
    /// for about half the scanning; BENCHMARKS.md has the runs.
    public var nprobe = 4
    /// Fresh candidates per category (rule 2's boost lifts fresh items the index ranks low, so
    /// they have their own source: the category's best fresh items by exact dot product).
    public var freshPerCategory = 8
    /// Of a category's first-round candidates, how many are scored exactly before the selection:
    /// the best `scoredFirst` index candidates and the best `freshScoredFirst` fresh ones, by
    /// their approximate scores. The category cap takes at most 3, so the rest are scored only
    /// when the selection runs through those (a category drained by the creator cap or the
    /// impression filter); each exact score is a few cache misses into the item and embedding
    /// tables. 8 / 4 against scoring all 16 + 12: overlap with the exact lists 0.9965 / 0.9791
    /// at 1M (now / +2d, 400 users; was 0.9995 / 0.9887), ~20 % more rankings/s with fresh
    /// items at 100k; 6 / 4 fell to 0.9859 at 100k +2d, 4 / 3 to 0.9558. BENCHMARKS.md.
    public var scoredFirst = 8
    public var freshScoredFirst = 4
    /// How many times a category that ran dry may be searched again (k and nprobe doubling);
    /// after that its items are scanned exhaustively, within `maxScoredCandidates`.
    public var maxExpansions = 4
    /// The bound that keeps one pathological user from stalling the worker: total candidates
    /// scored exactly per ranking. Hitting it is reported in the response and in metrics.
    public var maxScoredCandidates = 50_000

    public init() {}
}
