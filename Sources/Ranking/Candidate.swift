/// An item scored exactly for one user at time T.
public struct Candidate: Sendable, Equatable {
    // Stored widest first: 48-byte stride instead of 64 (candidates are copied and sorted per
    // category on every ranking).
    public var itemId: Int64
    public var creatorId: Int64
    /// sigmoid(dot / temperature + bias) in float64.
    public var baseScore: Double
    /// baseScore × the freshness boost when fresh (rule 2).
    public var score: Double
    public var row: Int32
    public var category: Int32
    /// dot(u, e) in float32.
    public var dot: Float
    public var fresh: Bool
    public var promoted: Bool

    public init(row: Int32, itemId: Int64, category: Int32, creatorId: Int64, dot: Float, baseScore: Double,
                score: Double, fresh: Bool, promoted: Bool) {
        self.row = row
        self.itemId = itemId
        self.category = category
        self.creatorId = creatorId
        self.dot = dot
        self.baseScore = baseScore
        self.score = score
        self.fresh = fresh
        self.promoted = promoted
    }

    /// Rule 4's order: descending final score, ties by ascending item id.
    @inlinable
    public static func ranksBefore(_ a: Candidate, _ b: Candidate) -> Bool {
        a.score != b.score ? a.score > b.score : a.itemId < b.itemId
    }

    /// Sorts `items` by `ranksBefore` (stable), moving 4-byte positions instead of candidates
    /// while sorting: a ranking sorts one pool of ~12-30 candidates per category, and sorting
    /// the candidates themselves was a sixth of a batch ranking's time (insertion-sort moves).
    /// The order is then applied in place through a stack copy (a new array per pool was a
    /// heap allocation and free per category per ranking).
    public static func sortRanked(_ items: inout [Candidate]) {
        let n = items.count
        guard n > 1 else { return }
        guard n <= 64 else { items.sort(by: ranksBefore); return }
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { order in
            withUnsafeTemporaryAllocation(of: Candidate.self, capacity: n) { copy in
                items.withUnsafeMutableBufferPointer { c in
                    var sorted = true
                    for i in 0..<n {
                        var j = i
                        while j > 0 && ranksBefore(c[i], c[Int(order[j - 1])]) {
                            order[j] = order[j - 1]
                            j -= 1
                        }
                        if j != i { sorted = false }
                        order[j] = Int32(i)
                    }
                    guard !sorted else { return }
                    _ = copy.initialize(fromContentsOf: c)
                    for i in 0..<n { c[i] = copy[Int(order[i])] }
                    copy.deinitialize()
                }
            }
        }
    }
}

/// Why an item did not make the list (or was moved), for `--explain` and the metrics.
public enum DropReason: String, Sendable, CaseIterable, Codable {
    case qualityFloor = "quality_floor"
    case recentlyShown = "recently_shown"
    case categoryCap = "category_cap"
    case creatorCap = "creator_cap"
    /// A promoted item beyond the available promoted slots.
    case noPromotedSlot = "no_promoted_slot"
    /// Scored lower than every item that made a full list.
    case belowCutoff = "below_cutoff"
}

/// Items dropped per rule in one ranking (summed into metrics by the worker).
/// One slot per rule: counting is on the path of every candidate, so no hashing.
public struct RuleCounters: Sendable, Equatable {
    private var slots = [Int](repeating: 0, count: DropReason.allCases.count)
    public init() {}
    public mutating func add(_ r: DropReason, _ n: Int = 1) { slots[r.slot] += n }
    public subscript(_ r: DropReason) -> Int { slots[r.slot] }
    /// The rules that dropped something, with their counts.
    public var counts: [DropReason: Int] {
        var out: [DropReason: Int] = [:]
        for r in DropReason.allCases where slots[r.slot] > 0 { out[r] = slots[r.slot] }
        return out
    }
}

extension DropReason {
    /// Position in `allCases`.
    var slot: Int {
        switch self {
        case .qualityFloor: 0
        case .recentlyShown: 1
        case .categoryCap: 2
        case .creatorCap: 3
        case .noPromotedSlot: 4
        case .belowCutoff: 5
        }
    }
}
