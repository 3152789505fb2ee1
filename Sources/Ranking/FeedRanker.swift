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

    public init(catalog: RankingCatalog) {
        self.catalog = catalog
        self.encoder = UserEncoder(bundle: catalog.bundle)
        self.searcher = catalog.index?.makeSearcher()
        self.u = [Float](repeating: 0, count: catalog.bundle.embeddingDimension)
    }

    public func rank(_ input: RankingInput) -> RankingOutput {
        rank(input, userEmbedding: nil)
    }

    /// Ranks with a user embedding computed elsewhere (batch jobs embed 1,000 users with one
    /// sgemm per layer); `userEmbedding` must be what `UserEncoder` gives for the input.
    public func rank(_ input: RankingInput, userEmbedding: UnsafeBufferPointer<Float>?) -> RankingOutput {
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
        lap(\.tower)

        let rules = catalog.rules
        let numItems = max(0, input.numItems)
        var pass = CandidatePass(catalog: catalog, input: input, u: u)
        var promoted = pass.score(rows: catalog.promotedRows, promoted: true)
        promoted.sort(by: Candidate.ranksBefore)
        lap(\.rescore)

        // Organic candidates per category.
        let c = catalog.categoryCount
        var pools = [CategoryCandidates](repeating: CategoryCandidates(items: [], complete: true), count: c)
        var expansions = [Int](repeating: 0, count: c)
        let useIndex = input.mode == .index && searcher != nil
        if useIndex, let searcher {
            let settings = catalog.retrieval
            let k0 = settings.candidatesPerCategory
            var neighbors: [[Int32]] = []
            neighbors.reserveCapacity(c)
            u.withUnsafeBufferPointer { q in
                catalog.categoryLabels.withUnsafeBufferPointer { labels in
                    searcher.searchPerLabel(q.baseAddress!, labels: labels, k: k0,
                                            parameters: SearchParameters(nprobe: settings.nprobe))
                }
            }
            for cat in 0..<c { neighbors.append(searcher.results(forLabelAt: cat).map { Int32(truncatingIfNeeded: $0.id) }) }
            lap(\.retrieval)
            for cat in 0..<c {
                var items = pass.score(rows: neighbors[cat], promoted: false)
                items.sort(by: Candidate.ranksBefore)
                // Every organic item of the category was a candidate: nothing else can exist.
                pools[cat] = CategoryCandidates(items: items, complete: neighbors[cat].count >= catalog.organicRows[cat].count)
            }
            lap(\.rescore)
        } else {
            for cat in 0..<c {
                var items = pass.score(rows: catalog.organicRows[cat], promoted: false)
                items.sort(by: Candidate.ranksBefore)
                pools[cat] = CategoryCandidates(items: items, complete: true)
            }
            lap(\.rescore)
        }

        // Rules 4–6; categories that ran dry below their cap are searched deeper and the
        // selection runs again, within the bound.
        var selection = GreedySelector.select(categories: pools, promoted: promoted, numItems: numItems, rules: rules)
        lap(\.rules)
        var boundHit = false
        var rounds = 0
        while !selection.needMore.isEmpty && !boundHit {
            rounds += 1
            for cat in selection.needMore {
                expansions[cat] += 1
                let size = catalog.organicRows[cat].count
                let settings = catalog.retrieval
                let k = settings.candidatesPerCategory << min(expansions[cat], 20)
                let exhaustive = expansions[cat] > settings.maxExpansions || k >= size || !useIndex
                let cost = exhaustive ? size : k
                if pass.scored + cost > settings.maxScoredCandidates {
                    boundHit = true
                    break
                }
                var rows: [Int32]
                if exhaustive {
                    rows = catalog.organicRows[cat]
                } else {
                    let nprobe = min(settings.nprobe << expansions[cat], catalog.index!.nlist)
                    rows = u.withUnsafeBufferPointer { q in
                        searcher!.search(q.baseAddress!, k: k, parameters: SearchParameters(nprobe: nprobe),
                                         filter: .label(UInt16(cat))).map { Int32(truncatingIfNeeded: $0.id) }
                    }
                    lap(\.retrieval)
                }
                var items = pass.score(rows: rows, promoted: false)
                items.sort(by: Candidate.ranksBefore)
                pools[cat] = CategoryCandidates(items: items, complete: exhaustive || rows.count >= size)
                lap(\.rescore)
            }
            selection = GreedySelector.select(categories: pools, promoted: promoted, numItems: numItems, rules: rules)
            lap(\.rules)
        }

        var counters = pass.counters
        for (_, reason) in selection.skipped { counters.add(reason) }
        counters.add(.noPromotedSlot, selection.unplacedPromoted.count)

        let items = selection.items.map { s -> RankedItem in
            var reasons: [String] = []
            if s.promoted { reasons.append("promoted_slot") }
            if s.slotFilledOrganically { reasons.append("slot_filled_organically") }
            if s.candidate.fresh { reasons.append("fresh_boost") }
            return RankedItem(itemId: s.candidate.itemId, score: s.candidate.score, rank: s.rank,
                              promoted: s.promoted, reasons: reasons)
        }
        var explanation: Explanation?
        if input.explain {
            explanation = Self.explain(selection: selection, pools: pools, pass: pass)
        }
        return RankingOutput(items: items, coldStart: input.state == nil,
                             short: selection.short && !boundHit, boundHit: boundHit,
                             counters: counters, userEmbedding: u, timings: timings,
                             scoredCandidates: pass.scored, expansions: rounds, explanation: explanation)
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
    let impressed: Set<Int64>
    let explain: Bool
    let u: [Float]
    var scored = 0
    var counters = RuleCounters()
    var dropped: [(Candidate, DropReason)] = []

    init(catalog: RankingCatalog, input: RankingInput, u: [Float]) {
        self.catalog = catalog
        self.at = input.at
        self.explain = input.explain
        self.u = u
        var seen = Set<Int64>()
        if let state = input.state {
            let from = input.at - catalog.rules.impressionWindowMs
            for imp in state.impressions where imp.ts >= from && imp.ts <= input.at { seen.insert(imp.itemId) }
        }
        self.impressed = seen
    }

    mutating func score(rows: [Int32], promoted: Bool) -> [Candidate] {
        var out: [Candidate] = []
        out.reserveCapacity(rows.count)
        let bundle = catalog.bundle, rules = catalog.rules, scoring = catalog.scoring
        let d = bundle.embeddingDimension
        scored += rows.count
        u.withUnsafeBufferPointer { ub in
            let up = ub.baseAddress!
            for r in rows {
                let row = Int(r)
                let item = bundle.items[row]
                let dot = scoring.dot(up, bundle.embeddingPointer(row: row))
                let base = scoring.score(dot: dot)
                let age = at - item.publishedAt
                let fresh = age >= 0 && age < rules.freshWindowMs
                let cand = Candidate(row: r, itemId: item.id, category: Int32(item.category), creatorId: item.creatorId,
                                     dot: dot, baseScore: base, score: fresh ? base * rules.freshnessBoost : base,
                                     fresh: fresh, promoted: promoted)
                if item.quality < rules.qualityFloor {
                    counters.add(.qualityFloor)
                    if explain { dropped.append((cand, .qualityFloor)) }
                } else if !impressed.isEmpty && impressed.contains(item.id) {
                    counters.add(.recentlyShown)
                    if explain { dropped.append((cand, .recentlyShown)) }
                } else {
                    out.append(cand)
                }
            }
        }
        return out
    }
}
