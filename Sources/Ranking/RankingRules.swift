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
    /// Candidates fetched per category in the first round, best first by approximate score. 8,
    /// as many as `scoredFirst` scores exactly before the selection: the next ones only served a
    /// category the caps or the impression filter drain, which now searches again instead
    /// (deeper, within `maxScoredCandidates`). Against 16: the same overlap with the exact lists
    /// over 1,000 users (100k 0.9982 / 0.9916, 1M 0.9965 / 0.9795, now / +2d), no extra search rounds on
    /// the demo worlds, retrieval -20 % at 100k and -10 % at 1M (a smaller top-k takes fewer
    /// insertions). nprobe limits the recall, not k.
    public var candidatesPerCategory = 8
    /// Inverted lists probed per category in the first round. 4 keeps the final lists' overlap
    /// with the exact lists at 0.989-0.9995 over 1,000 users at 100k and 1M items (8: 0.997-0.9999)
    /// for about half the scanning; BENCHMARKS.md has the runs.
    public var nprobe = 4
    /// Of those `nprobe` lists, the ones after a category's best are scanned only while their
    /// probe score is within this much of the best list's (or the lists before held fewer than
    /// `candidatesPerCategory` of the category's items); embeddings are unit-norm, so this is
    /// in cosine units. 0.025 scans ~40 % fewer lists than all 4 (1M: 41,000 -> 29,600 entries
    /// per ranking; 100k: 80 -> 45 lists) for +7-12 % rankings/s, at an overlap with the exact
    /// lists over 1,000 users of 0.9963 / 0.9814 at 100k (was 0.9982 / 0.9916) and 0.9961 / 0.9737
    /// at 1M (was 0.9965 / 0.9795), now / +2d; 0.018 fell to 0.9578 at 1M +2d (300 users).
    /// Infinity scans all `nprobe`. Searches after a category runs dry use no margin.
    public var probeMargin: Float = 0.025
    /// With an index ordered along its residuals' principal axis (`feedrank index build` orders
    /// it): each list is scanned from the end facing the user and stops where no entry can
    /// reach the category's heap, allowing this many standard deviations for the rest of the
    /// residual (`SearchParameters.axisSlack`). Infinity: whole lists. 3.5 scans ~45 % fewer
    /// entries at 1M (29,200 -> 16,300 per ranking, +2d) for +6 % / +11 % rankings/s (now /
    /// +2d) at an overlap 0.0001 / 0.0027 lower (1,000 users; 100k unchanged: its lists are a
    /// few blocks); 3 scanned 11,300 at 0.9607 (300 users). The batch job's shared scans
    /// (`BatchSourcePicks`) read whole lists. BENCHMARKS.md.
    public var axisSlack: Float = 3.5
    /// Fresh candidates per category (rule 2's boost lifts fresh items the index ranks low, so
    /// they have their own source: the category's best fresh items by approximate dot product,
    /// then scored exactly), plus `FeedRanker.approximationMargin`. 4, as many as
    /// `freshScoredFirst`: against 8 the same overlap with the exact lists with fresh items over
    /// 1,000 users (100k 0.9982, 1M 0.9965), no extra search rounds, and a smaller top-k over
    /// each category's fresh slice: re-score -10 % at 100k and 1M with fresh items.
    public var freshPerCategory = 4
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
