import RankingModel
import Ranking
import TestSupport
import Testing
import VectorIndex

@Suite("Batch fresh and promoted picks")
struct BatchSourcePicksTests {
    /// The `k` best of `rows` by exact dot product with `u` (Double sums), as a set.
    static func best(_ rows: [Int], k: Int, u: [Float], bundle: ModelBundle) -> Set<Int32> {
        let d = bundle.embeddingDimension
        let scored = rows.map { row -> (Double, Int) in
            let e = bundle.embeddingPointer(row: row)
            return ((0..<d).reduce(0.0) { $0 + Double(u[$1]) * Double(e[$1]) }, row)
        }
        return Set(scored.sorted { $0.0 > $1.0 }.prefix(k).map { Int32($0.1) })
    }

    @Test("the picks hold each category's index candidates and are the exact best fresh rows per category and promoted rows per freshness, without recently shown items; ranking with them keeps every rule",
          arguments: 0..<6)
    func picksAreExactAndRankingKeepsTheRules(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(500 + seed))
        var spec = SyntheticBundle()
        spec.seed = UInt64(seed + 40)
        spec.items = 1500 + Int(rng.next() % 1000)
        spec.categories = 2 + Int(rng.next() % 5)
        spec.fresh = 0.3 + rng.unit() * 0.3
        spec.promotedEvery = [7, 11, 40][seed % 3]
        let (bundle, dir) = try spec.load()
        defer { withExtendedLifetime(dir) {} }
        let rules = RankingRules()
        var settings = RetrievalSettings()
        settings.freshPerCategory = 2 + seed % 3
        let index = try RankingIndexBuilder.build(bundle: bundle, configuration: IVFPQConfiguration(
            dimension: spec.dimension, nlist: 8, subquantizers: 4, bitsPerCode: 4))
        let catalog = try RankingCatalog(bundle: bundle, index: index, rules: rules, retrieval: settings)
        let ranker = FeedRanker(catalog: catalog)
        let at = spec.now + Int64(rng.unit() * 3_600_000)
        let numItems = [50, 12, 5, 2][seed % 4]
        var inputs: [RankingInput] = []
        var embeddings: [Float] = []
        for user in 0..<40 {
            let state = try randomState(user: Int64(user), bundle: bundle, now: spec.now, rng: &rng)
            let input = RankingInput(userId: Int64(user), state: state, at: at, device: "ios", numItems: numItems)
            inputs.append(input)
            embeddings += ranker.rank(input).userEmbedding
        }
        let sources = try #require(BatchSourcePicks(catalog: catalog, at: at))
        let picks = embeddings.withUnsafeBufferPointer { sources.picks(for: inputs, embeddings: $0) }
        #expect(picks.count == inputs.count)

        let margin = FeedRanker.approximationMargin
        let slots = rules.promotedSlots.filter { $0 <= numItems }.count
        for (i, input) in inputs.enumerated() {
            let u = Array(embeddings[(i * spec.dimension)..<((i + 1) * spec.dimension)])
            var impressed = Set<Int64>()
            for imp in input.state?.impressions ?? [] where imp.ts >= at - rules.impressionWindowMs && imp.ts <= at {
                impressed.insert(imp.itemId)
            }
            func eligible(_ item: Item) -> Bool { item.quality >= rules.qualityFloor && !impressed.contains(item.id) }
            func isFresh(_ item: Item) -> Bool { at - item.publishedAt >= 0 && at - item.publishedAt < rules.freshWindowMs }
            let single = index.makeSearcher().searchPerLabel(u, labels: (0..<spec.categories).map { UInt16($0) },
                                                              k: settings.candidatesPerCategory,
                                                              parameters: SearchParameters(nprobe: settings.nprobe))
            let organic = try #require(picks[i].organic)
            #expect(organic.count == spec.categories)
            for cat in 0..<spec.categories {
                // The shared scans find what the user's own search finds (ids may differ only
                // at equal approximate scores; the batched searcher's own test checks scores).
                #expect(organic[cat].count == single[cat].count, "user \(i) category \(cat): index candidates")
                #expect(organic[cat].allSatisfy { !bundle.items[Int($0)].promoted && bundle.items[Int($0)].category == cat
                                                  && bundle.items[Int($0)].quality >= rules.qualityFloor })
                let rows = bundle.items.indices.filter { r in
                    let it = bundle.items[r]
                    return !it.promoted && it.category == cat && isFresh(it) && eligible(it)
                }
                let expected = Self.best(rows, k: settings.freshPerCategory + margin, u: u, bundle: bundle)
                #expect(Set(picks[i].fresh[cat]) == expected, "user \(i) category \(cat)")
                #expect(picks[i].fresh[cat].count == picks[i].fresh[cat].uniqued().count)
            }
            let promotedRows = bundle.items.indices.filter { bundle.items[$0].promoted }
            if slots > 0 && promotedRows.count > 2 * (slots + margin) {
                let usable = promotedRows.filter { eligible(bundle.items[$0]) }
                let fresh = Self.best(usable.filter { isFresh(bundle.items[$0]) }, k: slots + margin, u: u, bundle: bundle)
                let old = Self.best(usable.filter { !isFresh(bundle.items[$0]) }, k: slots + margin, u: u, bundle: bundle)
                #expect(Set(picks[i].promoted) == fresh.union(old), "user \(i) promoted")
            }

            let withPicks = embeddings.withUnsafeBufferPointer { e in
                ranker.rank(input, userEmbedding: UnsafeBufferPointer(rebasing: e[(i * spec.dimension)..<((i + 1) * spec.dimension)]),
                            picks: picks[i])
            }
            let alone = ranker.rank(input)
            checkResponse(withPicks, bundle: bundle, state: input.state, at: at, numItems: numItems, rules: rules,
                          context: "seed \(seed) user \(i) with batch picks")
            #expect(withPicks.items.count == alone.items.count, "seed \(seed) user \(i): list length")
        }
    }
}

private extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
