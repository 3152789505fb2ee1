import Foundation
import Ranking
import RankingModel
import Synchronization
import TestSupport
import Testing
import VectorIndex
@testable import Worker

/// Batch ranking (sgemm embeddings, several threads) against one-at-a-time ranking, and the
/// L1 entry check that `feedrank batch --verify` runs: valid lists pass, broken ones fail.
struct BatchRankerTests {
    static let now: Int64 = 1_795_700_000_000

    static func catalog() throws -> (RankingCatalog, ScratchDirectory) {
        var spec = SyntheticBundle()
        spec.items = 2000
        spec.categories = 20
        spec.dimension = 16
        spec.creators = 500
        spec.hidden = [32]
        spec.promotedEvery = 50
        let dir = ScratchDirectory("batch-bundle")
        try spec.write(to: dir.path)
        let bundle = try ModelBundle.load(directory: dir.path)
        let index = try RankingIndexBuilder.build(bundle: bundle, configuration: IVFPQConfiguration(
            dimension: 16, nlist: 16, subquantizers: 8, bitsPerCode: 4))
        return (try RankingCatalog(bundle: bundle, index: index), dir)
    }

    static func states(_ bundle: ModelBundle, users: ClosedRange<Int64>) throws -> [Int64: UserState] {
        var rng = SeededRandom(seed: 11)
        let updater = StateUpdater(bundle: bundle)
        let actions: [Action] = [.impression, .impression, .click, .like, .hide, .dwell]
        var out: [Int64: UserState] = [:]
        for user in users {
            var s: UserState?
            for i in 0..<(5 + Int(rng.next() % 20)) {
                let item = bundle.items[Int(rng.next() % UInt64(bundle.itemCount))]
                _ = try updater.apply(ActivityEvent(eventId: "e\(user)-\(i)", userId: user, itemId: item.id,
                                                    action: actions[Int(rng.next() % UInt64(actions.count))],
                                                    ts: now - Int64(rng.unit() * 30 * 3_600_000)), to: &s)
            }
            out[user] = s
        }
        return out
    }

    @Test func batchRankingOnTwoThreadsGivesTheListsOfSingleRanking() async throws {
        let (catalog, dir) = try Self.catalog()
        _ = dir
        let states = try Self.states(catalog.bundle, users: 1...230)
        let jobs = states.keys.sorted().map { RankJob(userId: $0, state: states[$0]) }
        let ranker = BatchRanker(catalog: catalog, threads: 2, batchSize: 64, numItems: 50)
        let got = Locked<[Int: RankedBatch]>([:])
        let delivered = await ranker.run(jobs, at: Self.now, deliver: { batch, release in
            got.withLock { $0[batch.index] = batch }
            release()
        })
        #expect(delivered == 4)
        let batches = got.withLock { $0 }
        #expect(batches.keys.sorted() == [0, 1, 2, 3])
        let single = FeedRanker(catalog: catalog)
        var compared = 0, identical = 0
        var overlap = 0.0
        for b in batches.values {
            #expect(b.users == Array(jobs[(b.index * 64)..<min(jobs.count, (b.index + 1) * 64)].map(\.userId)))
            for (user, bytes) in zip(b.users, b.responses) {
                let r = try RankingResponse.parse(bytes)
                #expect(r.trigger == .backfill && r.requestId == nil && r.userId == user)
                let expected = single.rank(RankingInput(userId: user, state: states[user], at: Self.now, device: nil, numItems: 50))
                // The batch's first round (BatchSourcePicks) picks fresh and promoted rows by exact
                // instead of int8 dot products and shares the index scans (coarse scores by sgemm):
                // the same rules and length, the same list up to the approximations.
                let v = ContractChecker.violations(r.items,
                                                   bundle: catalog.bundle, state: states[user], at: Self.now, numItems: 50,
                                                   rules: catalog.rules)
                #expect(v.isEmpty, "user \(user): \(v.prefix(3))")
                #expect(r.items.count == expected.items.count, "user \(user)")
                if r.items.map(\.itemId) == expected.items.map(\.itemId) {
                    identical += 1
                    // sgemm and sgemv may differ in the last bits of u: scores within 1e-5.
                    for (a, e) in zip(r.items, expected.items) { #expect(abs(a.score - e.score) < 1e-5) }
                }
                let ids = Set(expected.items.map(\.itemId))
                overlap += Double(r.items.filter { ids.contains($0.itemId) }.count) / Double(max(1, expected.items.count))
                compared += 1
            }
        }
        #expect(compared == 230)
        #expect(identical >= 220, "\(identical) of 230 lists identical to single ranking")
        #expect(overlap / 230 >= 0.99)
    }

    @Test func stoppedBatchRankingDeliversOnlyTheBatchesItStarted() async throws {
        let (catalog, dir) = try Self.catalog()
        _ = dir
        let states = try Self.states(catalog.bundle, users: 1...100)
        let jobs = states.keys.sorted().map { RankJob(userId: $0, state: states[$0]) }
        let ranker = BatchRanker(catalog: catalog, threads: 1, batchSize: 10, numItems: 20)
        let count = SharedCounter()
        let delivered = await ranker.run(jobs, at: Self.now, deliver: { _, release in count.add(); release() },
                                         shouldStop: { count.current >= 3 })
        #expect(delivered == 3)
    }

    // MARK: the L1 entry check

    func entry(_ catalog: RankingCatalog, user: Int64, state: UserState?, numItems: Int = 50) -> RankingResponse {
        let out = FeedRanker(catalog: catalog).rank(RankingInput(userId: user, state: state, at: Self.now, device: nil, numItems: numItems))
        return RankingResponse(requestId: nil, userId: user, trigger: .backfill, items: out.items, latencyMs: 1,
                               modelVersion: catalog.bundle.manifest.modelVersion, coldStart: out.coldStart,
                               generatedAt: Self.now, short: out.short, boundHit: out.boundHit)
    }

    @Test func checkAcceptsRankerOutputAndRejectsBrokenLists() throws {
        let (catalog, dir) = try Self.catalog()
        _ = dir
        let states = try Self.states(catalog.bundle, users: 1...20)
        let check = L1EntryCheck(catalog: catalog)
        let ttl = 86_400
        for user in Int64(1)...20 {
            let r = entry(catalog, user: user, state: states[user])
            let v = check.violations(entry: r.jsonBytes(), ttl: 86_000, user: user, state: states[user], at: Self.now,
                                     numItems: 50, expectedTTL: ttl)
            #expect(v.isEmpty, "user \(user): \(v)")
        }
        let user: Int64 = 3
        let state = states[user]
        let good = entry(catalog, user: user, state: state)
        #expect(good.items.count == 50 && !good.short)
        func violations(_ r: RankingResponse, ttl t: Int64 = 86_000) -> [String] {
            check.violations(entry: r.jsonBytes(), ttl: t, user: user, state: state, at: Self.now, numItems: 50, expectedTTL: ttl)
        }
        #expect(!violations(good, ttl: 43_000).isEmpty, "a 12 h TTL is not the backfill TTL")
        #expect(check.violations(entry: nil, ttl: -2, user: user, state: state, at: Self.now, numItems: 50, expectedTTL: ttl) == ["no L1 entry"])

        var dup = good
        dup.items[5].itemId = dup.items[4].itemId
        #expect(violations(dup).contains { $0.contains("duplicate") })

        var swapped = good
        let organic = swapped.items.indices.filter { !swapped.items[$0].promoted }
        swapped.items.swapAt(organic[0], organic[1])
        for i in swapped.items.indices { swapped.items[i].rank = i + 1 }
        #expect(violations(swapped).contains { $0.contains("organic order") })

        let bundle = catalog.bundle
        var lowQuality = good
        let bad = bundle.items.first { $0.quality < 0.5 && !$0.promoted }!
        lowQuality.items[lowQuality.items.count - 1].itemId = bad.id
        #expect(violations(lowQuality).contains { $0.contains("quality") }, "\(violations(lowQuality))")

        var shownState = state!
        shownState.impressions.append(Impression(itemId: good.items[0].itemId, ts: Self.now - 3_600_000))
        let shown = check.violations(entry: good.jsonBytes(), ttl: 86_000, user: user, state: shownState, at: Self.now,
                                     numItems: 50, expectedTTL: ttl)
        #expect(shown.contains { $0.contains("impressed") })

        var misplaced = good
        if let p = misplaced.items.firstIndex(where: \.promoted) {
            misplaced.items.swapAt(p, p + 1)
            for i in misplaced.items.indices { misplaced.items[i].rank = i + 1 }
            #expect(violations(misplaced).contains { $0.contains("rule 5") })
        } else {
            Issue.record("the synthetic catalogue should give promoted items")
        }

        var wrongScore = good
        wrongScore.items[0].score += 0.01
        #expect(violations(wrongScore).contains { $0.contains("exact") })

        var short = good
        short.items.removeLast()
        #expect(violations(short).contains { $0.contains("items for num_items 50") }, "\(violations(short)) \(good.items.count)")

        var other = good
        other.trigger = .activity
        other.modelVersion = "other"
        let v = violations(other)
        #expect(v.contains { $0.contains("trigger") } && v.contains { $0.contains("model_version") })
    }
}
