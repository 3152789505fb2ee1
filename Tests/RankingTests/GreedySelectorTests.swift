import Ranking
import TestSupport
import Testing

/// A plain restatement of rules 4–6 over a flat pool, to check the selector against.
func referenceSelection(organic: [Candidate], promoted: [Candidate], numItems: Int, rules: RankingRules) -> [(Int64, Bool)] {
    let pool = organic.sorted(by: Candidate.ranksBefore)
    let promos = promoted.sorted(by: Candidate.ranksBefore)
    var out: [(Int64, Bool)] = []
    var cat: [Int32: Int] = [:], creator: [Int64: Int] = [:]
    var used = Set<Int64>()
    var p = 0
    var rank = 1
    outer: while rank <= numItems {
        if rules.promotedSlots.contains(rank) && p < promos.count {
            out.append((promos[p].itemId, true)); p += 1; rank += 1; continue
        }
        for c in pool where !used.contains(c.itemId) {
            if cat[c.category, default: 0] >= rules.categoryCap || creator[c.creatorId, default: 0] >= rules.creatorCap { continue }
            used.insert(c.itemId)
            cat[c.category, default: 0] += 1
            creator[c.creatorId, default: 0] += 1
            out.append((c.itemId, false))
            rank += 1
            continue outer
        }
        break
    }
    return out
}

/// The drops of a single greedy pass over the flat pool: every organic item met before the
/// last organic pick (all of them when the pool runs out), category cap checked first.
func referenceDrops(organic: [Candidate], promoted: Int, numItems: Int, rules: RankingRules) -> [String] {
    let pool = organic.sorted(by: Candidate.ranksBefore)
    var drops: [String] = []
    var cat: [Int32: Int] = [:], creator: [Int64: Int] = [:]
    var p = 0, rank = 1, i = 0
    while rank <= numItems {
        if rules.promotedSlots.contains(rank) && p < promoted { p += 1; rank += 1; continue }
        var picked = false
        while i < pool.count {
            let c = pool[i]
            i += 1
            if cat[c.category, default: 0] >= rules.categoryCap { drops.append("\(c.itemId) category_cap"); continue }
            if creator[c.creatorId, default: 0] >= rules.creatorCap { drops.append("\(c.itemId) creator_cap"); continue }
            cat[c.category, default: 0] += 1
            creator[c.creatorId, default: 0] += 1
            picked = true
            break
        }
        if !picked { break }
        rank += 1
    }
    return drops.sorted()
}

func randomCandidate(_ rng: inout SeededRandom, id: Int64, categories: Int, creators: Int, promoted: Bool) -> Candidate {
    // Coarse scores so ties happen.
    let s = Double(rng.next() % 50) / 50
    return Candidate(row: Int32(id), itemId: id, category: Int32(rng.next() % UInt64(categories)),
                     creatorId: Int64(rng.next() % UInt64(creators)), dot: 0, baseScore: s, score: s,
                     fresh: false, promoted: promoted)
}

@Suite("Greedy selection (rules 4–6)")
struct GreedySelectorTests {
    @Test("on 2,000 random pools (default and random caps) the selector equals a plain restatement of the rules, drops included, and every invariant holds")
    func randomPools() {
        var rng = SeededRandom(seed: 99)
        for trial in 0..<2000 {
            var rules = RankingRules()
            if trial % 4 == 3 {
                rules.categoryCap = Int(rng.next() % 5)
                rules.creatorCap = Int(rng.next() % 4)
            }
            let categories = 1 + Int(rng.next() % 12)
            let creators = 1 + Int(rng.next() % 40)
            let n = Int(rng.next() % 300)
            let numItems = trial % 10 == 0 ? 1 + Int(rng.next() % 500) : 1 + Int(rng.next() % 60)
            var ids = Set<Int64>()
            var organic: [Candidate] = []
            for _ in 0..<n {
                let id = Int64(rng.next() % 100_000)
                if ids.insert(id).inserted {
                    organic.append(randomCandidate(&rng, id: id, categories: categories, creators: creators, promoted: false))
                }
            }
            var promoted: [Candidate] = []
            for _ in 0..<Int(rng.next() % 6) {
                let id = 200_000 + Int64(rng.next() % 1000)
                if ids.insert(id).inserted {
                    promoted.append(randomCandidate(&rng, id: id, categories: categories, creators: creators, promoted: true))
                }
            }
            var pools = [CategoryCandidates](repeating: CategoryCandidates(items: [], complete: true), count: categories)
            for c in organic { pools[Int(c.category)].items.append(c) }
            for i in pools.indices { pools[i].items.sort(by: Candidate.ranksBefore) }
            let sel = GreedySelector.select(categories: pools, promoted: promoted.sorted(by: Candidate.ranksBefore),
                                            numItems: numItems, rules: rules)
            let expected = referenceSelection(organic: organic, promoted: promoted, numItems: numItems, rules: rules)
            #expect(sel.items.map(\.candidate.itemId) == expected.map(\.0), "trial \(trial)")
            #expect(sel.items.map(\.promoted) == expected.map(\.1), "trial \(trial)")
            let drops = sel.skipped.map { "\($0.0.itemId) \($0.1.rawValue)" }.sorted()
            #expect(drops == referenceDrops(organic: organic, promoted: promoted.count, numItems: numItems, rules: rules),
                    "trial \(trial): the items dropped by the caps")
            #expect(sel.creatorCapSkips == sel.skipped.filter { $0.1 == .creatorCap }.count
                    && sel.categoryCapSkips == sel.skipped.filter { $0.1 == .categoryCap }.count)
            // Without recording the dropped candidates: the same list, the same counts.
            let quiet = GreedySelector.select(categories: pools, promoted: promoted.sorted(by: Candidate.ranksBefore),
                                              numItems: numItems, rules: rules, recordSkipped: false)
            #expect(quiet.items == sel.items && quiet.skipped.isEmpty && quiet.needMore == sel.needMore)
            #expect(quiet.creatorCapSkips == sel.creatorCapSkips && quiet.categoryCapSkips == sel.categoryCapSkips)
            #expect(sel.needMore.isEmpty, "complete pools never need more")
            checkInvariants(sel.items, numItems: numItems, rules: rules, context: "trial \(trial)")
            #expect(sel.short == (sel.items.count < numItems))
        }
    }

    @Test("sortRanked orders pools of 0 to 100 candidates (coarse scores, many ties) exactly as sort(by: ranksBefore)")
    func sortRankedEqualsSort() {
        var rng = SeededRandom(seed: 11)
        for n in 0...100 {
            for _ in 0..<5 {
                // Distinct ids in random order (ties on score are broken by id).
                var items = (0..<n).map {
                    randomCandidate(&rng, id: Int64($0), categories: 3, creators: 5, promoted: false)
                }
                items.shuffle(using: &rng)
                let expected = items.sorted(by: Candidate.ranksBefore)
                Candidate.sortRanked(&items)
                #expect(items == expected, "n = \(n)")
            }
        }
        // Scores of +0 and -0 (equal), negative ids: the same order as the plain sort.
        for n in [3, 17, 64] {
            var items = (0..<n).map { i -> Candidate in
                var c = randomCandidate(&rng, id: Int64(i) - 30, categories: 3, creators: 5, promoted: false)
                if i % 3 == 0 { c.score = i % 2 == 0 ? 0.0 : -0.0 }
                return c
            }
            items.shuffle(using: &rng)
            let expected = items.sorted(by: Candidate.ranksBefore)
            Candidate.sortRanked(&items)
            #expect(items.map(\.itemId) == expected.map(\.itemId), "n = \(n)")
        }
    }

    @Test("a category that runs dry below its cap while the list still needs items asks for more")
    func needMore() {
        let rules = RankingRules()
        func cand(_ id: Int, _ category: Int32, _ score: Double) -> Candidate {
            Candidate(row: Int32(id), itemId: Int64(id), category: category, creatorId: Int64(id), dot: 0,
                      baseScore: score, score: score, fresh: false, promoted: false)
        }
        let a = [cand(0, 0, 0.9), cand(1, 0, 0.89)]
        let b = (0..<10).map { (i: Int) -> Candidate in cand(10 + i, 1, 0.5 - Double(i) * 0.01) }
        let sel = GreedySelector.select(categories: [CategoryCandidates(items: a, complete: false),
                                                     CategoryCandidates(items: b, complete: false)],
                                        promoted: [], numItems: 5, rules: rules)
        #expect(sel.needMore == [0])
        let complete = GreedySelector.select(categories: [CategoryCandidates(items: a, complete: true),
                                                          CategoryCandidates(items: b, complete: false)],
                                             promoted: [], numItems: 5, rules: rules)
        #expect(complete.needMore.isEmpty)
    }
}

/// Rules 3–6 as checks on a returned list (items carry their candidates).
func checkInvariants(_ items: [SelectedItem], numItems: Int, rules: RankingRules, context: String) {
    #expect(items.count <= numItems, "\(context): too long")
    #expect(Set(items.map(\.candidate.itemId)).count == items.count, "\(context): duplicates")
    let ranks: [Int] = items.map(\.rank)
    #expect(ranks == Array(1..<(items.count + 1)), "\(context): ranks")
    var cat: [Int32: Int] = [:], creator: [Int64: Int] = [:]
    var last: Candidate?
    for s in items {
        if s.promoted {
            #expect(rules.promotedSlots.contains(s.rank), "\(context): promoted item at rank \(s.rank)")
            #expect(s.candidate.promoted)
            continue
        }
        #expect(!s.candidate.promoted, "\(context): promoted item placed organically")
        cat[s.candidate.category, default: 0] += 1
        creator[s.candidate.creatorId, default: 0] += 1
        #expect(cat[s.candidate.category]! <= rules.categoryCap, "\(context): category cap")
        #expect(creator[s.candidate.creatorId]! <= rules.creatorCap, "\(context): creator cap")
        if let l = last { #expect(Candidate.ranksBefore(l, s.candidate), "\(context): organic order at rank \(s.rank)") }
        last = s.candidate
    }
}
