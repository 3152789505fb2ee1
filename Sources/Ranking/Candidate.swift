import VectorIndex

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

    /// Sorts `items` by `ranksBefore`. A ranking sorts one pool of ~12-30 candidates per
    /// category: up to 64, each candidate's place is counted (`ThresholdScan.ranks` over the
    /// scores and item ids, four at a time, no branches; insertion sort mispredicted about once
    /// per move) and the candidates are put there from a stack copy (no heap allocation).
    public static func sortRanked(_ items: inout [Candidate]) {
        let n = items.count
        guard n > 1 else { return }
        guard n <= 64 else { items.sort(by: ranksBefore); return }
        let padded = (n + 3) & ~3
        withUnsafeTemporaryAllocation(of: Double.self, capacity: padded) { scores in
            withUnsafeTemporaryAllocation(of: Int64.self, capacity: padded) { ids in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { order in
                    withUnsafeTemporaryAllocation(of: Candidate.self, capacity: n) { copy in
                        items.withUnsafeMutableBufferPointer { c in
                            for i in 0..<n { scores[i] = c[i].score; ids[i] = c[i].itemId }
                            for i in n..<padded { scores[i] = -.infinity; ids[i] = 0 }
                            ThresholdScan.ranks(scores.baseAddress!, ties: ids.baseAddress!, count: n, into: order.baseAddress!)
                            // (An item twice in a pool would share a place: never so, but then
                            // the plain sort.)
                            var seen: UInt64 = 0
                            for i in 0..<n { seen |= UInt64(1) << UInt64(order[i]) }
                            guard seen == UInt64.max >> UInt64(64 - n) else { c.sort(by: ranksBefore); return }
                            _ = copy.initialize(fromContentsOf: c)
                            for i in 0..<n { c[Int(order[i])] = copy[i] }
                            copy.deinitialize()
                        }
                    }
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
