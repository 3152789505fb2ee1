import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import RedisClient
import TestSupport
import Testing
@testable import FeedRankCLI
@testable import Worker

/// `feedrank batch` against the local broker and Redis (scripts/test.sh): many users (20,000 by
/// default, FEEDRANK_TEST_BATCH_USERS=100000 for the figure — scripts/bench-batch.sh runs
/// 100,000 with a release build and checks every entry), the contract on the L1 entries, resuming
/// after a kill, the L4 source and the model check. Keys carry a per-test prefix (the Redis
/// database may be shared).
@Suite(.serialized)
struct BatchTests {
    static let at: Int64 = 1_795_700_000_000

    func quietLogger() -> Logger {
        var l = Logger(label: "it.batch")
        l.logLevel = .error
        return l
    }

    static var manyUsers: Int {
        Int(ProcessInfo.processInfo.environment["FEEDRANK_TEST_BATCH_USERS"] ?? "") ?? 20_000
    }

    func batchConfig(_ h: WorkerHarness, checkpoint: String, brokers: Bool = true) -> BatchConfiguration {
        var c = BatchConfiguration(kafka: brokers ? h.kafka.merging(["fetch.wait.max.ms": "10"]) : nil)
        c.keyPrefix = "bt-\(h.id):"
        c.topics = h.topics
        c.redisURL = h.redisURL
        c.threads = 2
        c.batchSize = 1000
        c.at = Self.at
        c.checkpointPath = checkpoint
        c.ackTimeoutSeconds = 120
        return c
    }

    /// Every active user has an L1 entry with the backfill TTL; inactive users have none.
    func expectL1Coverage(_ h: WorkerHarness, active: [Int64], inactive: [Int64]) async throws {
        let prefix = "bt-\(h.id):"
        let redis = try h.redis()
        var present = 0, ttlOK = 0
        for start in stride(from: 0, to: active.count, by: 2000) {
            let chunk = Array(active[start..<min(active.count, start + 2000)])
            let replies = try await redis.pipeline(chunk.map { .ttl(prefix + CacheKeys.ranking($0)) })
            for r in replies {
                let ttl = try r.integer()
                if ttl != -2 { present += 1 }
                if ttl > 12 * 3600 && ttl <= 24 * 3600 { ttlOK += 1 }
            }
        }
        #expect(present == active.count, "active users with an L1 entry")
        #expect(ttlOK == active.count, "entries with the 24 h backfill TTL")
        let stray = try await redis.mget(inactive.prefix(2000).map { prefix + CacheKeys.ranking($0) }).compactMap { $0 }
        #expect(stray.isEmpty, "inactive users are not ranked")
    }

    @Test func batchOverManyUsersWritesContractConformingL1EntriesWithTheBackfillTTL() async throws {
        let h = try WorkerHarness(partitions: 4, redisDB: 9)
        let users = try await h.produceStates(users: Self.manyUsers, at: Self.at)
        let dir = ScratchDirectory("batch")
        var c = batchConfig(h, checkpoint: dir.path + "/cp.json")
        c.publish = true
        let batch = BatchPrecompute(configuration: c, catalog: h.catalog, logger: quietLogger())
        let s = try await batch.run()
        #expect(s.completed && !s.resumed)
        #expect(s.statesRead == Self.manyUsers && s.activeUsers == users.active.count)
        #expect(s.ranked == users.active.count && s.l1Written == users.active.count && s.l1Skipped == 0)
        #expect(s.published == users.active.count && s.short == 0)
        try await expectL1Coverage(h, active: users.active, inactive: users.inactive)

        // Contract section 3 on an even sample (scripts/bench-batch.sh checks them all).
        let v = try await batch.verify(sample: 2_000)
        #expect(v.checked == 2_000 && v.ok, "\(v.lines)")
        #expect(try CheckpointStore.file(dir.path + "/cp.json").load()?.completed == true)

        // Every ranking also went to the response topic, as backfill.
        let responses = try await h.readTopic(h.topics.responses)
        #expect(responses.count == users.active.count)
        let parsed = try responses.prefix(500).map { try RankingResponse.parse($0.value) }
        #expect(parsed.allSatisfy { $0.trigger == .backfill && $0.requestId == nil && $0.items.count == 50 })
    }

    @Test func killedBatchResumesAfterItsCheckpointWithoutRedoingFinishedUsers() async throws {
        let h = try WorkerHarness(partitions: 4, redisDB: 9)
        let users = try await h.produceStates(users: 10_000, at: Self.at)
        let dir = ScratchDirectory("batch")
        var c = batchConfig(h, checkpoint: dir.path + "/cp.json")
        c.batchSize = 250
        let quiet = quietLogger()

        // Killed midway: stopped after about 40% of the users.
        let reached = SharedCounter()
        let firstConfig = c, activeCount = users.active.count
        let first = Task {
            try await BatchPrecompute(configuration: firstConfig, catalog: h.catalog, logger: quiet).run { p in
                if p.phase == "ranking" && p.done >= activeCount * 2 / 5 { reached.store(1) }
            }
        }
        while reached.current == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        first.cancel()
        let s1 = try await first.value
        #expect(!s1.completed && s1.ranked < users.active.count)
        let cp = try #require(try CheckpointStore.file(dir.path + "/cp.json").load())
        #expect(!cp.completed && cp.doneUsers > 0 && cp.doneUsers <= s1.ranked)
        let done = users.active.prefix(cp.doneUsers)
        #expect(done.last == cp.lastUserId)
        let redis = try h.redis()
        let before = try await redis.mget(done.map { c.keyPrefix + CacheKeys.ranking($0) })
        #expect(before.allSatisfy { $0 != nil })

        // The rerun continues after the checkpoint, at the first run's T.
        c.at = nil
        let s2 = try await BatchPrecompute(configuration: c, catalog: h.catalog, logger: quiet).run()
        #expect(s2.completed && s2.resumed && s2.at == Self.at)
        #expect(s2.alreadyDone == cp.doneUsers)
        #expect(s2.ranked == users.active.count - cp.doneUsers, "only the rest is ranked")
        let after = try await redis.mget(done.map { c.keyPrefix + CacheKeys.ranking($0) })
        #expect(after == before, "the finished users' entries were not written again")
        try await expectL1Coverage(h, active: users.active, inactive: users.inactive)
        var v = c
        v.at = Self.at
        let check = try await BatchPrecompute(configuration: v, catalog: h.catalog, logger: quiet).verify(sample: 500)
        #expect(check.ok, "\(check.lines)")

        // A third run finds the checkpoint completed and starts a new run.
        c.at = Self.at
        c.limit = 1000
        let s3 = try await BatchPrecompute(configuration: c, catalog: h.catalog, logger: quiet).run()
        #expect(!s3.resumed && s3.ranked == 1000)
    }

    @Test func batchWithoutBrokersRanksTheL4StatesAndRefusesAnotherModelsStates() async throws {
        let h = try WorkerHarness(partitions: 2, redisDB: 9)
        let redis = try h.redis()
        let states = try h.makeStates(users: 300, at: Self.at)
        let dir = ScratchDirectory("batch")
        var c = batchConfig(h, checkpoint: dir.path + "/cp.json", brokers: false)
        let prefix = c.keyPrefix
        _ = try await redis.pipeline(states.map { .set(prefix + CacheKeys.features($0.userId), $0.jsonBytes(), expireSeconds: 600) })
        let s = try await BatchPrecompute(configuration: c, catalog: h.catalog, logger: quietLogger()).run()
        let active = states.filter { $0.tLast >= Self.at - 30 * 86_400_000 }.count
        #expect(s.completed && s.statesRead == 300 && s.ranked == active)
        #expect(try await redis.get(prefix + CacheKeys.ranking(states[0].userId)) != nil)

        // L1 entries of another model: batch refuses (exit 2 from the CLI) unless allowed.
        let other = RankingResponse(requestId: nil, userId: 1, trigger: .activity, items: [], latencyMs: 0,
                                    modelVersion: "older-model", coldStart: false, generatedAt: 1)
        _ = try await redis.pipeline(states.map { .set(prefix + CacheKeys.ranking($0.userId), other.jsonBytes()) })
        c.restart = true
        let refused = BatchPrecompute(configuration: c, catalog: h.catalog, logger: quietLogger())
        await #expect(throws: ModelMismatchError.self) { _ = try await refused.run() }
        await #expect { _ = try await BatchCommand.execute("batch") { try await refused.run(progress: $0) } } throws: {
            ($0 as? CLIError)?.kind == .usage
        }
        c.allowModelMismatch = true
        #expect(try await BatchPrecompute(configuration: c, catalog: h.catalog, logger: quietLogger()).run().ranked == active)
    }
}

extension WorkerHarness {
    /// States of `users` users built from a few events each; every 10th user's events are 40
    /// days old (inactive in a 30-day window).
    func makeStates(users: Int, at: Int64) throws -> [UserState] {
        var rng = SeededRandom(seed: 5)
        let updater = StateUpdater(bundle: bundle)
        let actions: [Action] = [.impression, .impression, .click, .like, .dwell, .hide]
        var out: [UserState] = []
        out.reserveCapacity(users)
        for u in 1...users {
            let user = Int64(u)
            let base = u % 10 == 0 ? at - 40 * 86_400_000 : at - Int64(rng.unit() * 20 * 86_400_000)
            var s: UserState?
            for i in 0..<(2 + Int(rng.next() % 5)) {
                let item = bundle.items[Int(rng.next() % UInt64(bundle.itemCount))]
                _ = try updater.apply(ActivityEvent(eventId: "s\(u)-\(i)", userId: user, itemId: item.id,
                                                    action: actions[Int(rng.next() % UInt64(actions.count))],
                                                    ts: base + Int64(i) * 3_600_000), to: &s)
            }
            out.append(s!)
        }
        return out
    }

    /// Produces `makeStates` to the changelog (partition = the key's murmur2 partition, a source
    /// position, the model_version header). Returns the active and inactive user ids, ascending.
    func produceStates(users: Int, at: Int64) async throws -> (active: [Int64], inactive: [Int64]) {
        let producer = try self.producer()
        let acked = SharedCounter()
        var active: [Int64] = [], inactive: [Int64] = []
        for (i, var s) in try makeStates(users: users, at: at).enumerated() {
            let key = String(s.userId)
            let p = KafkaPartitioner.partition(forKey: key, partitionCount: partitions)
            s.source = SourcePosition(partition: p, offset: Int64(i))
            if s.tLast >= at - 30 * 86_400_000 { active.append(s.userId) } else { inactive.append(s.userId) }
            let record = OutgoingRecord(topic: topics.state, partition: p, key: key, value: s.jsonBytes(),
                                        headers: [KafkaHeader(key: ModelVersionCheck.header, string: bundle.manifest.modelVersion)])
            try await producer.enqueueWaiting(record) { if case .success = $0 { acked.add() } }
        }
        try await producer.flush(timeout: .seconds(120))
        guard Int(acked.current) == users else { throw HarnessError("only \(acked.current) of \(users) states acknowledged") }
        return (active, inactive)
    }
}
