/// One category's eligible organic candidates (rules 1–3 applied), best first.
public struct CategoryCandidates: Sendable {
    public var items: [Candidate]
    /// true when no eligible item of the category exists outside `items`.
    public var complete: Bool

    public init(items: [Candidate], complete: Bool) {
        self.items = items
        self.complete = complete
    }
}

/// An entry of the final list.
public struct SelectedItem: Sendable, Equatable {
    public var candidate: Candidate
    public var rank: Int
    public var promoted: Bool
    /// A promoted slot (rule 5) that no eligible promoted item was left for.
    public var slotFilledOrganically: Bool
}

/// The outcome of rules 4–6 over a candidate pool.
public struct Selection: Sendable {
    public var items: [SelectedItem] = []
    /// Categories whose candidates ran out while the list still needed items and the category
    /// was below its cap: the pool may be missing items of theirs that belong in the list.
    public var needMore: [Int] = []
    /// Organic candidates passed over by the caps: every candidate the greedy met (ranked before
    /// the last organic pick, or any when the pool ran out) and dropped. Creator-cap drops come
    /// in the order met, then the category-cap drops category by category.
    public var skipped: [(Candidate, DropReason)] = []
    /// How many of `skipped` each cap dropped; counted also when `skipped` is not recorded.
    public var creatorCapSkips = 0, categoryCapSkips = 0
    /// Promoted candidates that found no slot.
    public var unplacedPromoted: [Candidate] = []
    /// The list is shorter than asked because the pool ran out (under the caps).
    public var short = false
}

/// Rules 4–6: the greedy, capped, promoted-slotted selection. Pure and deterministic.
public enum GreedySelector {
    /// - Parameters:
    ///   - categories: per category id, its eligible organic candidates sorted by
    ///     `Candidate.ranksBefore` (missing or empty for categories without candidates).
    ///   - promoted: eligible promoted candidates sorted by `Candidate.ranksBefore`.
    ///   - recordSkipped: whether `Selection.skipped` lists the dropped candidates (for
    ///     `--explain`); the per-cap counts are kept either way (a ranking's ~100 dropped
    ///     candidates were copied into it only to be counted).
    public static func select(categories: [CategoryCandidates], promoted: [Candidate], numItems: Int,
                              rules: RankingRules, recordSkipped: Bool = true) -> Selection {
        var sel = Selection()
        sel.items.reserveCapacity(numItems)
        var next = [Int](repeating: 0, count: categories.count)
        var picks = [Int](repeating: 0, count: categories.count)
        var creatorPicks = IdCounts(expected: numItems)
        var flagged = [Bool](repeating: false, count: categories.count)
        // A category whose retrieved candidates were all ineligible has run dry before the
        // first draw: its unretrieved items may belong in the list.
        for (c, cc) in categories.enumerated() where cc.items.isEmpty && !cc.complete {
            flagged[c] = true
            sel.needMore.append(c)
        }
        // A category that reaches its cap leaves the heap: the greedy would only meet its further
        // items to drop them, so they are counted once the list is done (below). With a cap of 0
        // every category starts capped.
        let open = rules.categoryCap > 0
        var heap = CategoryHeap(categories: open ? categories : [])
        var capped: [Int] = open ? [] : categories.indices.filter { !categories[$0].items.isEmpty }
        var promotedNext = 0
        var lastOrganic: Candidate?
        var exhausted = false

        /// The next organic item under the caps, or nil when the pool is exhausted.
        func nextOrganic() -> Candidate? {
            while let c = heap.popBest() {
                let cand = categories[c].items[next[c]]
                next[c] += 1
                var take = true
                if creatorPicks[cand.creatorId] >= rules.creatorCap {
                    sel.creatorCapSkips += 1
                    if recordSkipped { sel.skipped.append((cand, .creatorCap)) }
                    take = false
                } else {
                    picks[c] += 1
                    creatorPicks.increment(cand.creatorId)
                }
                if picks[c] >= rules.categoryCap {
                    capped.append(c)
                } else if next[c] < categories[c].items.count {
                    heap.push(c, categories[c].items[next[c]])
                } else if !categories[c].complete && !flagged[c] {
                    // Ran dry below its cap while still drawing: the pool may miss its items.
                    flagged[c] = true
                    sel.needMore.append(c)
                }
                if take {
                    lastOrganic = cand
                    return cand
                }
            }
            exhausted = true
            return nil
        }

        var rank = 1
        while rank <= numItems {
            if rules.isPromotedSlot(rank) && promotedNext < promoted.count {
                sel.items.append(SelectedItem(candidate: promoted[promotedNext], rank: rank, promoted: true,
                                              slotFilledOrganically: false))
                promotedNext += 1
            } else if let cand = nextOrganic() {
                sel.items.append(SelectedItem(candidate: cand, rank: rank, promoted: false,
                                              slotFilledOrganically: rules.isPromotedSlot(rank)))
            } else {
                sel.short = true
                break
            }
            rank += 1
        }
        // The capped categories' items the greedy would have met: all of them when the pool ran
        // out, else those ranked before the last organic pick.
        for c in capped {
            var i = next[c]
            while i < categories[c].items.count
                    && (exhausted || lastOrganic.map { Candidate.ranksBefore(categories[c].items[i], $0) } ?? false) {
                sel.categoryCapSkips += 1
                if recordSkipped { sel.skipped.append((categories[c].items[i], .categoryCap)) }
                i += 1
            }
        }
        sel.unplacedPromoted = Array(promoted[promotedNext...])
        return sel
    }
}

/// A binary max-heap of category ids keyed by their current head candidate. Entries hold only
/// the order's key (score, item id), 24 bytes instead of a whole candidate: the heap sifts on
/// every item the selection draws.
struct CategoryHeap {
    private struct Entry {
        var score: Double
        var itemId: Int64
        var category: Int

        /// `Candidate.ranksBefore` on the heads.
        @inline(__always)
        func before(_ o: Entry) -> Bool { score != o.score ? score > o.score : itemId < o.itemId }
    }

    private var entries: [Entry] = []

    init(categories: [CategoryCandidates]) {
        entries.reserveCapacity(categories.count)
        for (c, cc) in categories.enumerated() where !cc.items.isEmpty { push(c, cc.items[0]) }
    }

    mutating func push(_ c: Int, _ head: Candidate) {
        entries.append(Entry(score: head.score, itemId: head.itemId, category: c))
        var i = entries.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard entries[i].before(entries[p]) else { break }
            entries.swapAt(i, p)
            i = p
        }
    }

    mutating func popBest() -> Int? {
        guard let top = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < entries.count && entries[l].before(entries[best]) { best = l }
                if r < entries.count && entries[r].before(entries[best]) { best = r }
                if best == i { break }
                entries.swapAt(i, best)
                i = best
            }
        }
        return top.category
    }
}
