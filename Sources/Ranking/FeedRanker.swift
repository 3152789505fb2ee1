import CPrefetch
import LinearAlgebra
import RankingModel
import VectorIndex

/// The one ranking function every path uses (CLI, stream worker, HTTP, batch):
/// user embedding -> per-category IVF-PQ candidates (+ promoted, scored exactly) -> exact
/// re-scoring with the freshness boost -> rules 3–6 -> list.
///
/// Holds per-thread scratch (tower buffers, the index searcher): one ranker per thread or
/// task; the `RankingCatalog` behind it is shared.
public final class FeedRanker {
    public let catalog: RankingCatalog
    private let encoder: UserEncoder
    private let searcher: IVFPQSearcher?
    private var u: [Float]
    /// The user embedding quantised for the fresh and promoted sources' int8 passes (on the
    /// catalog's projection when it has one, `projected` holding the coordinates).
    private var query: Int8Query
    private var projected: [Float]
    /// Per-ranking scratch kept across rankings (no allocation per category per ranking). A
    /// ranking takes it out of the ranker into a local variable and puts it back at the end:
    /// used in place as stored properties of the class, every append paid a dynamic
    /// exclusivity check.
    private var scratch = Scratch()

    private struct Scratch {
        /// The fresh and promoted sources' approximate dot products.
        var dots: [Float] = []
        /// Per category: the index candidates, the fresh picks, the first-round split.
        var indexGroups = RowGroups(), freshGroups = RowGroups()
        var firstGroups = RowGroups(), laterGroups = RowGroups()
        var freshBest = TopRows(k: 0), promotedNewer = TopRows(k: 0), promotedOlder = TopRows(k: 0)
        var promotedPicked: [Int32] = []
        /// The last ranking's candidate pools (their arrays keep their storage).
        var pools: [CategoryCandidates] = []
        var expansions: [Int] = [], allIndexed: [Bool] = [], laterTaken: [Bool] = []
        /// The last ranking's fresh-window edges per fresh source (categories, then the
        /// promoted source; lower and upper edge; -1 before the first): hints for the next
        /// ranking's searches.
        var windowHints: [Int] = []
    }

    public init(catalog: RankingCatalog) {
        self.catalog = catalog
        self.encoder = UserEncoder(bundle: catalog.bundle)
        self.searcher = catalog.index?.makeSearcher()
        self.u = [Float](repeating: 0, count: catalog.bundle.embeddingDimension)
        self.query = Int8Query(dimension: catalog.projection?.kept ?? catalog.bundle.embeddingDimension)
        self.projected = [Float](repeating: 0, count: 1 + (catalog.projection?.kept ?? 0))
        self.scratch.windowHints = [Int](repeating: -1, count: 2 * (catalog.freshSource.count + 1))
    }

    public func rank(_ input: RankingInput) -> RankingOutput {
        rank(input, userEmbedding: nil)
    }

    /// The index searcher's work counters since this ranker was made (or `resetSearchStatistics`);
    /// zero without an index.
    public var searchStatistics: SearchStatistics { searcher?.statistics ?? SearchStatistics() }

    public func resetSearchStatistics() { searcher?.resetStatistics() }

    /// Ranks with a user embedding computed elsewhere (batch jobs embed 1,000 users with one
    /// sgemm per layer); `userEmbedding` must be what `UserEncoder` gives for the input.
    ///
    /// `picks` replaces the first round's index search and the fresh and promoted sources' own
    /// passes with picks made for many users at once (`BatchSourcePicks`); it is used only with
    /// the index and without `explain`.
    public func rank(_ input: RankingInput, userEmbedding: UnsafeBufferPointer<Float>?,
                     picks: SourcePicks? = nil) -> RankingOutput {
        var s = Scratch()
        swap(&s, &scratch)
        defer { swap(&s, &scratch) }
        let clock = ContinuousClock()
        var timings = RankingTimings()
        var t0 = clock.now
        func lap(_ field: WritableKeyPath<RankingTimings, Int64>) {
            let now = clock.now
            let d = (now - t0).components
            timings[keyPath: field] += d.seconds * 1_000_000_000 + d.attoseconds / 1_000_000_000
            t0 = now
        }

        if let given = userEmbedding {
            precondition(given.count == u.count, "rank: user embedding has \(given.count) floats, needs \(u.count)")
            for i in 0..<u.count { u[i] = given[i] }
        } else {
            u.withUnsafeMutableBufferPointer { encoder.embed(state: input.state, at: input.at, device: input.device, into: $0) }
        }
        if let projection = catalog.projection {
            u.withUnsafeBufferPointer { ub in
                projected.withUnsafeMutableBufferPointer { p in
                    projection.project(ub.baseAddress!, into: p.baseAddress!)
                    query.set(p.baseAddress! + 1, lead: p[0])
                }
            }
        } else {
            u.withUnsafeBufferPointer { query.set($0.baseAddress!) }
        }
        lap(\.tower)

        let rules = catalog.rules
        let numItems = max(0, input.numItems)
        var pass = CandidatePass(catalog: catalog, input: input, u: u)
        let useIndex = input.mode == .index && searcher != nil
        // Rule 5 needs only the best eligible promoted items, one per slot within the list:
        // with the index (and no --explain, which lists every dropped item) those are picked
        // by an sgemv over the promoted matrix and only they are scored exactly.
        let batchPicks = useIndex && !input.explain ? picks : nil
        let promotedRows = useIndex && !input.explain
            ? (batchPicks?.promoted ?? promotedCandidateRows(at: input.at, impressed: pass.impressed, numItems: numItems, &s))
            : catalog.promotedRows
        var promoted = pass.score(rows: promotedRows, promoted: true)
        Candidate.sortRanked(&promoted)
        lap(\.rescore)

        // Organic candidates per category.
        let c = catalog.categoryCount
        var pools = Self.takePools(c, from: &s)
        s.indexGroups.reset(); s.freshGroups.reset(); s.firstGroups.reset(); s.laterGroups.reset()
        s.expansions.removeAll(keepingCapacity: true); s.expansions.append(contentsOf: repeatElement(0, count: c))
        s.allIndexed.removeAll(keepingCapacity: true); s.allIndexed.append(contentsOf: repeatElement(false, count: c))
        s.laterTaken.removeAll(keepingCapacity: true); s.laterTaken.append(contentsOf: repeatElement(false, count: c))
        if useIndex, let searcher {
            let settings = catalog.retrieval
            let k0 = settings.candidatesPerCategory
            if let organic = batchPicks?.organic {
                for cat in 0..<c {
                    for r in organic[cat] { s.indexGroups.append(r) }
                    s.indexGroups.close()
                }
            } else {
                u.withUnsafeBufferPointer { q in
                    catalog.categoryLabels.withUnsafeBufferPointer { labels in
                        searcher.searchPerLabel(q.baseAddress!, labels: labels, k: k0,
                                                parameters: SearchParameters(nprobe: settings.nprobe, probeMargin: settings.probeMargin,
                                                                             axisSlack: settings.axisSlack))
                    }
                }
                for cat in 0..<c {
                    for n in searcher.results(forLabelAt: cat) { s.indexGroups.append(Int32(truncatingIfNeeded: n.id)) }
                    s.indexGroups.close()
                }
            }
            lap(\.retrieval)
            // Their rows arrive while the fresh picks are chosen.
            if catalog.prefetchRows { pass.prefetch(s.indexGroups.rows) }
            // Per category the best candidates by approximate score are scored exactly now, the
            // rest (`later`) only if the selection runs through the category.
            let firstIndex = input.explain ? Int.max : settings.scoredFirst
            let firstFresh = input.explain ? Int.max : settings.freshScoredFirst
            for cat in 0..<c {
                if let batchPicks {
                    for r in batchPicks.fresh[cat] { s.freshGroups.append(r) }
                } else {
                    appendFreshCandidates(cat: cat, at: input.at, impressed: pass.impressed, &s)
                }
                s.freshGroups.close()
                // (Arriving while the next categories' picks are chosen.)
                if catalog.prefetchRows { pass.prefetch(s.freshGroups[cat]) }
            }
            if batchPicks == nil && catalog.projection != nil {
                // On the projection the approximate order is too coarse to choose which
                // `freshScoredFirst` picks are scored now (the 1M world's overlap fell from
                // 0.996 to 0.984): each category's picks are put in exact dot order first.
                // Their rows are loaded now instead of when scored.
                pass.touch(CollectionOfOne(s.freshGroups.rows))
                u.withUnsafeBufferPointer { ub in
                    for cat in 0..<c {
                        s.freshGroups.sortGroup(cat) { catalog.scoring.dot(ub.baseAddress!, catalog.bundle.embeddingPointer(row: Int($0))) }
                    }
                }
            }
            // (Through buffer pointers: array slices retained and released the groups' storage.)
            s.indexGroups.rows.withUnsafeBufferPointer { ir in
                s.freshGroups.rows.withUnsafeBufferPointer { fr in
                    for cat in 0..<c {
                        Self.split(index: UnsafeBufferPointer(rebasing: ir[s.indexGroups.range(cat)]),
                                   fresh: UnsafeBufferPointer(rebasing: fr[s.freshGroups.range(cat)]),
                                   firstIndex: firstIndex, firstFresh: firstFresh, now: &s.firstGroups, later: &s.laterGroups)
                    }
                }
            }
            // Every category's first-round rows are touched in one pass (~8-12 rows a category
            // alone leave too few misses in flight), then scored.
            pass.touch(CollectionOfOne(s.firstGroups.rows))
            for cat in 0..<c {
                pass.score(rows: s.firstGroups[cat], promoted: false, touched: true, into: &pools[cat].items)
                Candidate.sortRanked(&pools[cat].items)
                // Every organic item of the category was a candidate: nothing else can exist.
                s.allIndexed[cat] = s.indexGroups.range(cat).count >= catalog.indexedCount(category: cat)
                pools[cat].complete = s.laterGroups.range(cat).isEmpty && s.allIndexed[cat]
            }
            lap(\.rescore)
        } else {
            // Exact: every organic item scored, the best `exactKeep` per category kept (a
            // category that the caps drain is scored again in full below).
            let keep = max(Self.exactKeep, numItems)
            for cat in 0..<c {
                let (items, complete) = pass.scoreTop(rows: catalog.organicRows[cat], keep: keep)
                pools[cat] = CategoryCandidates(items: items, complete: complete)
            }
            lap(\.rescore)
        }

        // Rules 4–6; categories that ran dry below their cap are searched deeper and the
        // selection runs again, within the bound.
        var selection = GreedySelector.select(categories: pools, promoted: promoted, numItems: numItems, rules: rules,
                                              recordSkipped: input.explain)
        lap(\.rules)
        var boundHit = false
        var rounds = 0
        while !selection.needMore.isEmpty && !boundHit {
            var searched = false
            for cat in selection.needMore {
                if cat < s.laterGroups.count && !s.laterTaken[cat] && !s.laterGroups.range(cat).isEmpty {
                    // First the category's remaining first-round candidates.
                    s.laterTaken[cat] = true
                    pass.score(rows: s.laterGroups[cat], promoted: false, into: &pools[cat].items)
                    Candidate.sortRanked(&pools[cat].items)
                    pools[cat].complete = s.allIndexed[cat]
                    lap(\.rescore)
                    continue
                }
                searched = true
                s.expansions[cat] += 1
                // With the index, the category's items that can appear at all are the indexed
                // ones (at or above the quality floor); exact retrieval scores every item.
                let size = useIndex ? catalog.indexedCount(category: cat) : catalog.organicRows[cat].count
                let settings = catalog.retrieval
                let k = settings.candidatesPerCategory << min(s.expansions[cat], 20)
                let exhaustive = s.expansions[cat] > settings.maxExpansions || k >= size || !useIndex
                let cost = exhaustive ? size : k
                // Exact retrieval has no bound: it scores the whole catalogue by definition.
                if useIndex && pass.scored + cost > settings.maxScoredCandidates {
                    boundHit = true
                    break
                }
                var rows: [Int32]
                if exhaustive {
                    rows = useIndex ? catalog.indexedRows(category: cat) : catalog.organicRows[cat]
                } else {
                    let nprobe = min(settings.nprobe << s.expansions[cat], catalog.index!.nlist)
                    rows = u.withUnsafeBufferPointer { q in
                        searcher!.search(q.baseAddress!, k: k, parameters: SearchParameters(nprobe: nprobe),
                                         filter: .label(UInt16(cat))).map { Int32(truncatingIfNeeded: $0.id) }
                    }
                    for r in s.freshGroups[cat] where !rows.contains(r) { rows.append(r) }
                    lap(\.retrieval)
                }
                var items = pass.score(rows: rows, promoted: false)
                Candidate.sortRanked(&items)
                pools[cat] = CategoryCandidates(items: items, complete: exhaustive || rows.count >= size)
                lap(\.rescore)
            }
            if searched { rounds += 1 }
            selection = GreedySelector.select(categories: pools, promoted: promoted, numItems: numItems, rules: rules,
                                              recordSkipped: input.explain)
            lap(\.rules)
        }

        var counters = pass.counters
        counters.add(.creatorCap, selection.creatorCapSkips)
        counters.add(.categoryCap, selection.categoryCapSkips)
        counters.add(.noPromotedSlot, selection.unplacedPromoted.count)

        let items = selection.items.map { s -> RankedItem in
            RankedItem(itemId: s.candidate.itemId, score: s.candidate.score, rank: s.rank, promoted: s.promoted,
                       reasons: Self.reasons[(s.promoted ? 1 : 0) | (s.slotFilledOrganically ? 2 : 0) | (s.candidate.fresh ? 4 : 0)])
        }
        var explanation: Explanation?
        if input.explain {
            explanation = Self.explain(selection: selection, pools: pools, pass: pass)
        }
        s.pools = pools
        return RankingOutput(items: items, coldStart: input.state == nil,
                             short: selection.short && !boundHit, boundHit: boundHit,
                             counters: counters, userEmbedding: u, timings: timings,
                             scoredCandidates: pass.scored, expansions: rounds, explanation: explanation)
    }

    /// A category's first-round candidates split into those scored exactly before the selection
    /// (the first `firstIndex` of `index` and the first `firstFresh` of `fresh`, both best first
    /// by approximate score) and the rest; each row once. Appends one group to each of `now`
    /// and `later`.
    static func split<Index: Collection<Int32>, Fresh: Collection<Int32>>(
        index: Index, fresh: Fresh, firstIndex: Int, firstFresh: Int, now: inout RowGroups, later: inout RowGroups) {
        // One bit per row (r mod 64) of each group being built: a row whose bit is clear is not
        // in it, and the group is searched only when the bit is set (~1 row in 6 here).
        var inNow: UInt64 = 0, inLater: UInt64 = 0
        @inline(__always) func bit(_ r: Int32) -> UInt64 { UInt64(1) << UInt64(r & 63) }
        @inline(__always) func nowHolds(_ r: Int32) -> Bool { inNow & bit(r) != 0 && now.openGroupContains(r) }
        for r in index.prefix(firstIndex) { now.append(r); inNow |= bit(r) }
        for r in fresh.prefix(firstFresh) where !nowHolds(r) { now.append(r); inNow |= bit(r) }
        for r in index.dropFirst(firstIndex) where !nowHolds(r) { later.append(r); inLater |= bit(r) }
        for r in fresh.dropFirst(firstFresh) where !nowHolds(r) && !(inLater & bit(r) != 0 && later.openGroupContains(r)) {
            later.append(r)
        }
        now.close()
        later.close()
    }

    /// `split` for one category, as arrays.
    static func split(index: [Int32], fresh: [Int32], firstIndex: Int, firstFresh: Int) -> (now: [Int32], later: [Int32]) {
        var now = RowGroups(), later = RowGroups()
        split(index: index, fresh: fresh, firstIndex: firstIndex, firstFresh: firstFresh, now: &now, later: &later)
        return (Array(now[0]), Array(later[0]))
    }

    /// The candidate pools of a ranking, one per category, empty: the last ranking's, whose
    /// arrays keep their storage.
    private static func takePools(_ c: Int, from s: inout Scratch) -> [CategoryCandidates] {
        var p: [CategoryCandidates] = []
        swap(&p, &s.pools)
        if p.count != c { return [CategoryCandidates](repeating: CategoryCandidates(items: [], complete: true), count: c) }
        for i in 0..<c {
            p[i].items.removeAll(keepingCapacity: true)
            p[i].complete = true
        }
        return p
    }

    /// The best `freshPerCategory` items of category `cat` that are fresh at `at` (rule 2) and
    /// not recently shown, by dot product: within a category every fresh item gets the same
    /// boost, so the best by dot are the best by final score. One pass of approximate (int8)
    /// dot products over the category's contiguous fresh slice picks them, with a margin of
    /// `approximationMargin` for the approximation; the picked rows are then scored exactly like
    /// every other candidate. Appends them to the group `s.freshGroups` is building.
    private func appendFreshCandidates(cat: Int, at: Int64, impressed: IdCounts, _ s: inout Scratch) {
        let k = catalog.retrieval.freshPerCategory
        guard k > 0, cat < catalog.freshSource.count else { return }
        let src = catalog.freshSource[cat]
        let (lo, hi) = Self.window(src, at: at, windowMs: catalog.rules.freshWindowMs, hints: &s.windowHints, slot: cat)
        let n = hi - lo
        let pick = k + Self.approximationMargin
        guard n > 0 else { return }
        if n <= pick && impressed.isEmpty {
            for r in src.rows[lo..<hi] { s.freshGroups.append(r) }
            return
        }
        s.freshBest.reset(k: pick)
        src.offerApproximate(lo..<hi, query: query, impressed: impressed, to: &s.freshBest, dots: &s.dots)
        s.freshBest.appendRows(to: &s.freshGroups)
    }

    /// The entries of `src` fresh at `at` (published in (at - windowMs, at]), found from the
    /// hints in `hints[2 · slot ...]` (`Scratch.windowHints`), which are updated.
    @inline(__always)
    private static func window(_ src: FreshSlice, at: Int64, windowMs: Int64, hints: inout [Int], slot: Int) -> (Int, Int) {
        let lo = src.firstAfter(at - windowMs, hint: hints[2 * slot]), hi = src.firstAfter(at, hint: hints[2 * slot + 1])
        hints[2 * slot] = lo
        hints[2 * slot + 1] = hi
        return (lo, hi)
    }

    /// An item's `reasons` by (promoted, slot filled organically, fresh) as bits 0, 1, 2: shared
    /// arrays, so the 50 items of a list allocate none.
    private static let reasons: [[String]] = (0..<8).map { bits in
        var r: [String] = []
        if bits & 1 != 0 { r.append("promoted_slot") }
        if bits & 2 != 0 { r.append("slot_filled_organically") }
        if bits & 4 != 0 { r.append("fresh_boost") }
        return r
    }

    /// Rows picked by approximate dot products beyond those needed, so the approximation's
    /// error rarely changes which rows the exact scores then order.
    public static let approximationMargin = 4

    /// Candidates kept per category in exact mode before the selection (at least num_items):
    /// the category cap takes 3, so only a category drained by the creator cap or by the list's
    /// length needs more, and then it is scored again in full.
    static let exactKeep = 64

    /// The promoted rows rule 5 can use: for each of fresh and not fresh (the boost changes
    /// the order between them), the best by approximate dot product among the eligible ones
    /// (quality floor, not recently shown), as many as there are slots within the list plus
    /// `approximationMargin`. The picked rows are then scored exactly.
    private func promotedCandidateRows(at: Int64, impressed: IdCounts, numItems: Int, _ s: inout Scratch) -> [Int32] {
        let rows = catalog.promotedRows
        let rules = catalog.rules
        let slots = rules.promotedSlots.filter { $0 <= numItems }.count
        guard !rows.isEmpty, slots > 0 else { return [] }
        let m = slots + Self.approximationMargin
        guard rows.count > 2 * m, let src = catalog.promotedSource else { return rows }
        let e = src.count
        guard e > 0 else { return [] }
        let (lo, hi) = Self.window(src, at: at, windowMs: rules.freshWindowMs, hints: &s.windowHints,
                                   slot: catalog.freshSource.count)
        s.promotedNewer.reset(k: m)
        s.promotedOlder.reset(k: m)
        src.offerApproximate(lo..<hi, query: query, impressed: impressed, to: &s.promotedNewer, dots: &s.dots)
        src.offerApproximate(0..<lo, hi..<e, query: query, impressed: impressed, to: &s.promotedOlder, dots: &s.dots)
        s.promotedPicked.removeAll(keepingCapacity: true)
        s.promotedNewer.appendRows(to: &s.promotedPicked)
        s.promotedOlder.appendRows(to: &s.promotedPicked)
        return s.promotedPicked
    }

    /// Rule 5's picks from the promoted source given a dot product per entry: the best `m` of
    /// the entries in `fresh` and the best `m` of the others (the boost changes the order
    /// between the two groups, not within them).
    static func promotedPicks(_ src: FreshSlice, dots: UnsafePointer<Float>, fresh: Range<Int>, m: Int,
                              impressed: IdCounts) -> [Int32] {
        var newer = TopRows(k: m), older = TopRows(k: m)
        src.offer(fresh, dots: dots, dotsBase: 0, impressed: impressed, to: &newer)
        src.offer(0..<fresh.lowerBound, dots: dots, dotsBase: 0, impressed: impressed, to: &older)
        src.offer(fresh.upperBound..<src.count, dots: dots, dotsBase: 0, impressed: impressed, to: &older)
        return newer.rows + older.rows
    }

    private static func explain(selection: Selection, pools: [CategoryCandidates], pass: CandidatePass) -> Explanation {
        let returned = selection.items.map { s in
            Explanation.Entry(candidate: s.candidate, rank: s.rank,
                              reason: s.promoted ? "promoted_slot" : (s.slotFilledOrganically ? "slot_filled_organically" : "organic"))
        }
        var dropped = pass.dropped.map { Explanation.Entry(candidate: $0.0, rank: nil, reason: $0.1.rawValue) }
        dropped += selection.skipped.map { Explanation.Entry(candidate: $0.0, rank: nil, reason: $0.1.rawValue) }
        dropped += selection.unplacedPromoted.map { Explanation.Entry(candidate: $0, rank: nil, reason: DropReason.noPromotedSlot.rawValue) }
        // The best candidates that were eligible and uncapped but came after a full list.
        let chosen = Set(selection.items.map(\.candidate.itemId))
        let skippedIds = Set(selection.skipped.map(\.0.itemId))
        for pool in pools {
            for cand in pool.items.prefix(5) where !chosen.contains(cand.itemId) && !skippedIds.contains(cand.itemId) {
                dropped.append(Explanation.Entry(candidate: cand, rank: nil, reason: DropReason.belowCutoff.rawValue))
            }
        }
        dropped.sort { Candidate.ranksBefore($0.candidate, $1.candidate) }
        return Explanation(returned: returned, dropped: Array(dropped.prefix(20)))
    }
}

/// Exact scoring of candidate rows for one ranking, with rule 3 applied (and counted).
struct CandidatePass {
    let catalog: RankingCatalog
    let at: Int64
    let impressed: IdCounts
    let explain: Bool
    let u: [Float]
    var scored = 0
    var counters = RuleCounters()
    var dropped: [(Candidate, DropReason)] = []
    /// Keeps the touch loads of `score` from being optimised away.
    private(set) var touchSink: Int64 = 0

    init(catalog: RankingCatalog, input: RankingInput, u: [Float]) {
        self.catalog = catalog
        self.at = input.at
        self.explain = input.explain
        self.u = u
        self.impressed = Self.impressedItems(input.state, at: input.at, windowMs: catalog.rules.impressionWindowMs)
    }

    /// Rule 3's recently shown items: impressions in [at - window, at].
    static func impressedItems(_ state: UserState?, at: Int64, windowMs: Int64) -> IdCounts {
        var seen = IdCounts.empty
        if let state {
            let from = at - windowMs
            for imp in state.impressions where imp.ts >= from && imp.ts <= at { seen.insert(imp.itemId) }
        }
        return seen
    }

    /// Rows scored exactly (rule 3 applied); `touched` when `touch` already loaded them.
    mutating func score(rows: [Int32], promoted: Bool, touched: Bool = false) -> [Candidate] {
        var out: [Candidate] = []
        score(rows: rows, promoted: promoted, touched: touched, into: &out)
        return out
    }

    /// As above, appending to `out`.
    mutating func score<Rows: Collection<Int32>>(rows: Rows, promoted: Bool, touched: Bool = false, into out: inout [Candidate]) {
        out.reserveCapacity(out.count + rows.count)
        scored += rows.count
        if !touched && rows.count > 8 { touch(CollectionOfOne(rows)) }
        u.withUnsafeBufferPointer { ub in
            let up = ub.baseAddress!
            for r in rows {
                let cand = candidate(up, r, promoted: promoted)
                if admits(cand) { out.append(cand) }
            }
        }
    }

    /// Candidates are random rows of a large item table and embedding matrix: every cache line
    /// `score` will read is first touched with independent loads (the CPU overlaps those misses).
    /// Scoring cold, each row's misses came one after another (measured: 90 % of `score`'s time
    /// was the item load).
    mutating func touch<Groups: Sequence>(_ groups: Groups) where Groups.Element: Sequence<Int32> {
        let bundle = catalog.bundle
        let d = bundle.embeddingDimension
        var touch: Int64 = 0
        bundle.items.withUnsafeBufferPointer { items in
            for rows in groups {
                for r in rows {
                    // An item (48 bytes) straddles two cache lines one time in four: its first
                    // field and its quality (32 bytes on) are on both lines then.
                    touch &+= items[Int(r)].id &+ Int64(items[Int(r)].quality.bitPattern & 1)
                    let e = bundle.embeddingPointer(row: Int(r))
                    var off = 0
                    while off < d { touch &+= Int64(e[off].bitPattern); off &+= 16 }
                }
            }
        }
        touchSink = touch
    }

    /// Asks for the cache lines `score` will read of `rows` without waiting for them (prefetch
    /// hints retire at once, where `touch`'s loads hold up the instructions behind them): issued
    /// as soon as the rows are known, their misses overlap the work before they are scored.
    func prefetch<Rows: Sequence<Int32>>(_ rows: Rows) {
        let bundle = catalog.bundle
        let d = bundle.embeddingDimension
        bundle.items.withUnsafeBufferPointer { items in
            let base = UnsafeRawPointer(items.baseAddress!)
            for r in rows {
                let item = base + Int(r) * MemoryLayout<Item>.stride
                feedrank_prefetch(item)
                feedrank_prefetch(item + MemoryLayout<Item>.stride - 1)
                let e = UnsafeRawPointer(bundle.embeddingPointer(row: Int(r)))
                var off = 0
                while off < d { feedrank_prefetch(e + off * 4); off &+= 16 }
            }
        }
    }

    /// As `score` for exact retrieval over a whole category: only the `keep` best eligible
    /// candidates are kept (sorted by `Candidate.ranksBefore`; rule 3's counters still count
    /// every row). `complete` is false when eligible candidates were left out, so a selection
    /// that runs through the kept ones asks for the category again (`needMore`).
    mutating func scoreTop(rows: [Int32], keep: Int) -> (items: [Candidate], complete: Bool) {
        precondition(keep > 0, "scoreTop: keep must be positive")
        scored += rows.count
        var best: [Candidate] = []
        best.reserveCapacity(2 * keep)
        var worst: Candidate?     // the last kept one after a cut: anything not before it is out
        var leftOut = false
        u.withUnsafeBufferPointer { ub in
            let up = ub.baseAddress!
            for r in rows {
                let cand = candidate(up, r, promoted: false)
                guard admits(cand) else { continue }
                if let w = worst, !Candidate.ranksBefore(cand, w) { leftOut = true; continue }
                best.append(cand)
                if best.count == 2 * keep {
                    best.sort(by: Candidate.ranksBefore)
                    best.removeLast(keep)
                    worst = best.last
                    leftOut = true
                }
            }
        }
        best.sort(by: Candidate.ranksBefore)
        if best.count > keep { best.removeLast(best.count - keep); leftOut = true }
        return (best, !leftOut)
    }

    /// Row `r` scored exactly (rule 2's boost applied).
    @inline(__always)
    private func candidate(_ up: UnsafePointer<Float>, _ r: Int32, promoted: Bool) -> Candidate {
        let bundle = catalog.bundle, rules = catalog.rules
        let row = Int(r)
        let item = bundle.items[row]
        let dot = catalog.scoring.dot(up, bundle.embeddingPointer(row: row))
        let base = catalog.scoring.score(dot: dot)
        let age = at - item.publishedAt
        let fresh = age >= 0 && age < rules.freshWindowMs
        return Candidate(row: r, itemId: item.id, category: Int32(item.category), creatorId: item.creatorId,
                         dot: dot, baseScore: base, score: fresh ? base * rules.freshnessBoost : base,
                         fresh: fresh, promoted: promoted)
    }

    /// Rule 3: whether a candidate may appear; a dropped one is counted (and kept for
    /// `--explain`).
    @inline(__always)
    private mutating func admits(_ cand: Candidate) -> Bool {
        let reason: DropReason
        if catalog.bundle.items[Int(cand.row)].quality < catalog.rules.qualityFloor {
            reason = .qualityFloor
        } else if !impressed.isEmpty && impressed.contains(cand.itemId) {
            reason = .recentlyShown
        } else {
            return true
        }
        counters.add(reason)
        if explain { dropped.append((cand, reason)) }
        return false
    }
}
