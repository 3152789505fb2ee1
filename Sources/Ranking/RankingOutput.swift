import RankingModel

/// What to rank: a user (state or cold start) at time T on a device.
public struct RankingInput: Sendable {
    public var userId: Int64
    public var state: UserState?
    /// T, milliseconds since the epoch.
    public var at: Int64
    public var device: String?
    public var numItems: Int
    public var mode: RetrievalMode
    /// Collect the per-item score components and the best dropped items.
    public var explain: Bool

    public init(userId: Int64, state: UserState?, at: Int64, device: String?, numItems: Int,
                mode: RetrievalMode = .index, explain: Bool = false) {
        self.userId = userId
        self.state = state
        self.at = at
        self.device = device
        self.numItems = numItems
        self.mode = mode
        self.explain = explain
    }
}

/// One entry of a ranked list (the contract's response item).
public struct RankedItem: Sendable, Equatable {
    public var itemId: Int64
    public var score: Double
    public var rank: Int
    public var promoted: Bool
    /// e.g. "fresh_boost", "promoted_slot", "slot_filled_organically".
    public var reasons: [String]

    public init(itemId: Int64, score: Double, rank: Int, promoted: Bool, reasons: [String] = []) {
        self.itemId = itemId
        self.score = score
        self.rank = rank
        self.promoted = promoted
        self.reasons = reasons
    }
}

/// Where the time of one ranking went (nanoseconds).
public struct RankingTimings: Sendable, Equatable {
    public var tower: Int64 = 0
    public var retrieval: Int64 = 0
    public var rescore: Int64 = 0
    public var rules: Int64 = 0
    public init() {}
    public var total: Int64 { tower + retrieval + rescore + rules }
}

/// A ranked list and how it came about.
public struct RankingOutput: Sendable {
    public var items: [RankedItem]
    public var coldStart: Bool
    /// The list is shorter than asked because the catalogue holds no more eligible items
    /// under rules 3–5.
    public var short: Bool
    /// The per-ranking search bound was reached (`RetrievalSettings.maxScoredCandidates`):
    /// the list may be shorter or less exact than the rules allow.
    public var boundHit: Bool
    public var counters: RuleCounters
    /// u (D floats), for the L2 cache tier.
    public var userEmbedding: [Float]
    public var timings: RankingTimings
    /// Candidates scored exactly.
    public var scoredCandidates: Int
    /// Extra search rounds for categories that ran dry.
    public var expansions: Int
    public var explanation: Explanation?
}

/// `--explain`: the score components of the returned items and of the best dropped ones.
public struct Explanation: Sendable {
    public struct Entry: Sendable {
        public var candidate: Candidate
        public var rank: Int?
        /// Why it is where it is (returned items) or why it is absent (dropped items).
        public var reason: String
    }
    public var returned: [Entry]
    public var dropped: [Entry]
}
