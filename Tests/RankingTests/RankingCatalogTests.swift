import Ranking
import RankingModel
import TestSupport
import Testing
import VectorIndex

@Suite("The ranking index holds the items that can appear")
struct RankingCatalogTests {
    @Test("the index holds exactly the organic items at or above the quality floor; an index of every organic item is rejected naming the floor")
    func indexLeavesOutItemsBelowTheFloor() throws {
        var spec = SyntheticBundle()
        spec.items = 1200
        spec.categories = 4
        spec.lowQuality = 0.3
        spec.promotedEvery = 9
        let (bundle, dir) = try spec.load()
        defer { withExtendedLifetime(dir) {} }
        let rules = RankingRules()
        let config = IVFPQConfiguration(dimension: spec.dimension, nlist: 8, subquantizers: 4, bitsPerCode: 4)
        let index = try RankingIndexBuilder.build(bundle: bundle, configuration: config)

        let expected = Set(bundle.items.indices.filter { !bundle.items[$0].promoted && bundle.items[$0].quality >= rules.qualityFloor })
        let below = bundle.items.filter { !$0.promoted && $0.quality < rules.qualityFloor }.count
        #expect(below > 100, "the synthetic world has items below the floor to leave out")
        // Every entry of every list: an exhaustive search from any query.
        let all = index.makeSearcher().search([Float](repeating: 0.1, count: spec.dimension), k: bundle.itemCount,
                                               parameters: SearchParameters(nprobe: index.nlist))
        #expect(Set(all.map { Int($0.id) }) == expected)
        #expect(index.count == expected.count)
        _ = try RankingCatalog(bundle: bundle, index: index, rules: rules)

        let everything = try RankingIndexBuilder.build(bundle: bundle, qualityFloor: 0, configuration: config)
        #expect(everything.count == expected.count + below)
        #expect {
            try RankingCatalog(bundle: bundle, index: everything, rules: rules)
        } throws: { error in
            "\(error)".contains("quality floor \(rules.qualityFloor)") && "\(error)".contains("feedrank index build")
        }
    }
}
