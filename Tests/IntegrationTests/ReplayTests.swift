import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import RedisClient
import Synchronization
import TestSupport
import Testing
@testable import FeedRankCLI
@testable import Worker

/// `feedrank replay` against the local broker and Redis (scripts/test.sh): byte-identity with the
/// live worker, interruption, --from/--until, the model-version refusal, and the writes that
/// keep it safe next to a running worker. Each test has its own topics and Redis database.
@Suite(.serialized)
struct ReplayTests {
    static let t0: Int64 = 1_795_600_000_000

    func replayConfig(_ h: WorkerHarness, state: String? = nil, dlq: String? = nil, prefix: String = "") -> ReplayConfiguration {
        var c = ReplayConfiguration(kafka: h.kafka.merging(["fetch.wait.max.ms": "10"]))
        c.topics = h.topics
        if let state { c.topics.state = state }
        if let dlq { c.topics.deadLetter = dlq }
        c.redisURL = h.redisURL
        c.keyPrefix = prefix
        c.ackTimeoutSeconds = 60
        return c
    }

    func quietLogger() -> Logger {
        var l = Logger(label: "it.replay")
        l.logLevel = .error
        return l
    }

    @Test func replayFromEarliestRebuildsTheLiveWorkersStatesByteForByte() async throws {
        let h = try WorkerHarness(partitions: 4, redisDB: 8)
        let log = try await h.produceActivityLog(users: 1500, events: 20_000, malformed: 30, keyMismatches: 10, startTs: Self.t0)
        let running = h.startWorker()
        try await h.waitOwning(running.worker, 4)
        let ends = try await h.endOffsets(h.topics.activity)
        try await waitFor(240, "the live worker to commit the whole log") { try h.committed(ends) }
        try await running.stop()
        let live = try await h.latestStateRecords(h.topics.state)

        let state2 = h.topics.state + "-replay", dlq2 = h.topics.deadLetter + "-replay"
        try h.createTopics([state2, dlq2])
        let replayStarted = Date()
        let summary = try await ActivityReplay(configuration: replayConfig(h, state: state2, dlq: dlq2, prefix: "replay:"),
                                               catalog: h.catalog, logger: quietLogger()).run()
        #expect(summary.recordsRead == log.total)
        #expect(summary.eventsApplied == log.valid)
        #expect(summary.deadLettered == log.malformed + log.keyMismatches)
        #expect(summary.users == live.count && summary.statesWritten == live.count)

        let replayed = try await h.latestStateRecords(state2)
        #expect(replayed.count == live.count, "users with a state")
        var identical = 0
        for (user, record) in live where replayed[user]?.value == record.value { identical += 1 }
        #expect(identical == live.count, "states byte-identical to the live worker's: \(identical) of \(live.count)")
        #expect(replayed.values.allSatisfy { $0.header(ModelVersionCheck.header)?.stringValue == h.bundle.manifest.modelVersion })

        // Malformed records went to the DLQ exactly as the worker sends them.
        func dlqKeys(_ records: [KafkaRecord]) -> [String] {
            records.map { r in ["error", "source_topic", "source_partition", "source_offset"].map { r.header($0)?.stringValue ?? "-" }.joined(separator: "|") }.sorted()
        }
        let workerDLQ = try await h.readTopic(h.topics.deadLetter), replayDLQ = try await h.readTopic(dlq2)
        #expect(replayDLQ.count == log.malformed + log.keyMismatches)
        #expect(dlqKeys(replayDLQ) == dlqKeys(workerDLQ), "same records, same error and source headers")

        // L4 holds the replayed states (30 min TTL).
        let redis = try h.redis()
        let sample = Array(live.keys.sorted().prefix(50))
        let l4 = try await redis.mget(sample.map { "replay:" + CacheKeys.features($0) })
        for (user, value) in zip(sample, l4) { #expect(value == live[user]?.value, "L4 of user \(user)") }
        let ttl = try await redis.ttl("replay:" + CacheKeys.features(sample[0]))
        // Set to 1800 s during the replay: at most the time since it started has run down.
        #expect(ttl <= 1800 && ttl >= 1800 - Int64(Date().timeIntervalSince(replayStarted).rounded(.up)) - 2, "L4 TTL \(ttl)")

        // Replaying again from a time on top of those states changes nothing: every event is
        // recognised by the redelivery marks.
        var again = replayConfig(h, state: state2, dlq: dlq2, prefix: "replay:")
        again.from = .time(Self.t0 - 2 * 3_600_000)
        let second = try await ActivityReplay(configuration: again, catalog: h.catalog, logger: quietLogger()).run()
        #expect(second.eventsApplied == 0 && second.duplicates == log.valid)
        #expect(second.statesWritten == 0)
    }

    @Test func interruptedReplayRerunGivesTheSameStates() async throws {
        let h = try WorkerHarness(partitions: 4, redisDB: 8)
        _ = try await h.produceActivityLog(users: 1200, events: 8_000, malformed: 0, keyMismatches: 0, startTs: Self.t0)
        let full = h.topics.state + "-full", cut = h.topics.state + "-cut"
        try h.createTopics([full, cut])
        let reference = try await ActivityReplay(configuration: replayConfig(h, state: full, prefix: "full:"), catalog: h.catalog,
                                                 logger: quietLogger()).run()
        #expect(reference.statesWritten == 1200)

        // Interrupted while writing: cancelled after about half of the states.
        let interrupted = Task { [self] in
            try await ActivityReplay(configuration: replayConfig(h, state: cut, prefix: "cut:"), catalog: h.catalog,
                                     logger: quietLogger()).run { p in
                if p.phase == "writing states" && p.done >= 600 { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        await #expect(throws: CancellationError.self) { _ = try await interrupted.value }
        let partial = try await h.latestStateRecords(cut)
        #expect(partial.count > 0 && partial.count < 1200, "the interrupted run wrote \(partial.count) states")

        let rerun = try await ActivityReplay(configuration: replayConfig(h, state: cut, prefix: "cut:"), catalog: h.catalog,
                                             logger: quietLogger()).run()
        #expect(rerun.statesUnchanged == partial.count, "what the first run wrote is not written again")
        #expect(rerun.statesWritten == 1200 - partial.count)
        let a = try await h.latestStateRecords(full), b = try await h.latestStateRecords(cut)
        #expect(a.count == b.count)
        #expect(a.allSatisfy { b[$0.key]?.value == $0.value.value }, "same states after the rerun")
    }

    @Test func replayFromATimeSkipsOlderRecordsAndBuildsOnTheChangelogStates() async throws {
        let h = try WorkerHarness(partitions: 2, redisDB: 8)
        // 4,000 events one minute apart per 100 users; the record timestamps are the event times.
        let log = try await h.produceActivityLog(users: 100, events: 4_000, malformed: 0, keyMismatches: 0, startTs: Self.t0)
        let cutoff = Self.t0 + Int64(2_000) * 60_000
        let full = h.topics.state + "-full", split = h.topics.state + "-split", fresh = h.topics.state + "-fresh"
        try h.createTopics([full, split, fresh])
        let quiet = quietLogger()
        _ = try await ActivityReplay(configuration: replayConfig(h, state: full, prefix: "a:"), catalog: h.catalog, logger: quiet).run()

        // The states as of the cutoff (--until), then a replay --from the cutoff on top of them.
        var first = replayConfig(h, state: split, prefix: "b:")
        first.until = cutoff - 1
        let s1 = try await ActivityReplay(configuration: first, catalog: h.catalog, logger: quiet).run()
        #expect(s1.eventsApplied > 1_900 && s1.eventsApplied + s1.afterUntil == 4_000)
        var second = replayConfig(h, state: split, prefix: "b:")
        second.from = .time(cutoff)
        let s2 = try await ActivityReplay(configuration: second, catalog: h.catalog, logger: quiet).run()
        #expect(s2.skippedBeforeFrom == s1.eventsApplied, "the broker's offsets-for-times is coarse: older records are skipped while reading")
        #expect(s2.gapRecords == 0 && s2.eventsApplied == s1.afterUntil && s2.startingStates == s1.users)
        let a = try await h.latestStateRecords(full), b = try await h.latestStateRecords(split)
        #expect(a.count == log.users && a.allSatisfy { b[$0.key]?.value == $0.value.value }, "until + from = the whole log")

        // From a time on an empty changelog: the skipped records are reported as gaps.
        var gap = replayConfig(h, state: fresh, prefix: "c:")
        gap.from = .time(cutoff)
        gap.dryRun = true
        let s3 = try await ActivityReplay(configuration: gap, catalog: h.catalog, logger: quiet).run()
        #expect(s3.gapRecords == s1.eventsApplied && s3.eventsApplied == s1.afterUntil)
        #expect(try await h.readTopic(fresh).isEmpty, "a dry run writes nothing")
    }

    @Test func replayRefusesStatesOfAnotherModelUnlessAllowed() async throws {
        let h = try WorkerHarness(partitions: 2, redisDB: 8)
        _ = try await h.produceActivityLog(users: 20, events: 200, malformed: 0, keyMismatches: 0, startTs: Self.t0)
        var old = UserState(userId: 1, firstEventAt: Self.t0, manifest: h.bundle.manifest)
        old.source = SourcePosition(partition: 0, offset: 0)
        let producer = try h.producer()
        _ = try await producer.send(OutgoingRecord(topic: h.topics.state, partition: 0, key: "1", value: old.jsonBytes(),
                                                   headers: [KafkaHeader(key: ModelVersionCheck.header, string: "older-model")]))
        let replay = ActivityReplay(configuration: replayConfig(h), catalog: h.catalog, logger: quietLogger())
        await #expect(throws: ModelMismatchError.self) { _ = try await replay.run() }
        do { _ = try await replay.run() } catch let e as ModelMismatchError {
            #expect(e.message.contains("older-model") && e.message.contains("--allow-model-mismatch"))
        }
        var allowed = replayConfig(h)
        allowed.allowModelMismatch = true
        allowed.dryRun = true
        let s = try await ActivityReplay(configuration: allowed, catalog: h.catalog, logger: quietLogger()).run()
        #expect(s.eventsApplied == 200)

        // The CLI maps the refusal to a usage error (exit 2).
        await #expect { _ = try await ReplayCommand.execute(replay) } throws: { ($0 as? CLIError)?.kind == .usage }
    }

    @Test func guardedCacheWritesKeepWhatTheLiveWorkerWroteFromNewerStates() async throws {
        let redis = try RedisClient(url: Env.redis + "/8")
        let prefix = "guard-\(UInt32.random(in: 0...UInt32.max)):"
        let cache = GuardedCacheWriter(redis: redis, keyPrefix: prefix)
        let runStart: Int64 = 2_000
        func l1(_ trigger: RankingTrigger, generatedAt: Int64) -> [UInt8] {
            RankingResponse(requestId: nil, userId: 1, trigger: trigger, items: [], latencyMs: 0, modelVersion: "m",
                            coldStart: false, generatedAt: generatedAt).jsonBytes()
        }
        try await redis.set(prefix + CacheKeys.ranking(1), l1(.activity, generatedAt: 2_500))   // live, during the run
        try await redis.set(prefix + CacheKeys.ranking(2), l1(.activity, generatedAt: 1_500))   // live, before the run
        try await redis.set(prefix + CacheKeys.ranking(3), l1(.backfill, generatedAt: 2_500))   // another backfill
        let ours = l1(.backfill, generatedAt: 3_000)
        let o = try await cache.write(l1: (1...4).map { .init(user: $0, value: ours, ttl: 86_400, runStartedAt: runStart) })
        #expect(o.written == 3 && o.skipped == 1)
        #expect(try await redis.get(prefix + CacheKeys.ranking(1)) == l1(.activity, generatedAt: 2_500))
        for u: Int64 in 2...4 { #expect(try await redis.get(prefix + CacheKeys.ranking(u)) == ours) }
        #expect(try await redis.ttl(prefix + CacheKeys.ranking(4)) > 86_000)

        let manifest = try SyntheticBundle().load().0.manifest
        func state(_ offset: Int64) -> UserState {
            var s = UserState(userId: 9, firstEventAt: 1, manifest: manifest)
            s.source = SourcePosition(partition: 3, offset: offset)
            return s
        }
        try await redis.set(prefix + CacheKeys.features(9), state(500).jsonBytes())
        let kept = try await cache.write(l4: [.init(user: 9, value: state(400).jsonBytes(), ttl: 1800, source: (3, 400))])
        #expect(kept.skipped == 1, "the live worker's L4 state has applied more events")
        let replaced = try await cache.write(l4: [.init(user: 9, value: state(600).jsonBytes(), ttl: 1800, source: (3, 600))])
        #expect(replaced.written == 1)
        #expect(try await redis.get(prefix + CacheKeys.features(9)) == state(600).jsonBytes())

        // Redis forgot the scripts (restart, SCRIPT FLUSH): they are loaded again.
        _ = try await redis.pipeline([RedisCommand("SCRIPT", ["FLUSH"])])
        #expect(try await cache.write(l1: [.init(user: 5, value: ours, ttl: 60, runStartedAt: runStart)]).written == 1)
    }

    @Test func reconcileReproducesANewerStateTheLiveWorkerWroteBeforeOurs() async throws {
        let h = try WorkerHarness(partitions: 2, redisDB: 8)
        let manifest = h.bundle.manifest
        func state(_ offset: Int64) -> UserState {
            var s = UserState(userId: 4, firstEventAt: Self.t0, manifest: manifest)
            s.tLast = Self.t0 + offset
            s.source = SourcePosition(partition: 1, offset: offset)
            return s
        }
        // The live worker's newer state lands first, the replay's older one after it.
        let producer = try h.producer()
        for offset: Int64 in [250, 180] {
            _ = try await producer.send(OutgoingRecord(topic: h.topics.state, partition: 1, key: "4", value: state(offset).jsonBytes()))
        }
        let replay = ActivityReplay(configuration: replayConfig(h), catalog: h.catalog, logger: quietLogger())
        let pending = PendingOutputs()
        let sink = OutputSink(producer: producer, redis: try h.redis(), metrics: WorkerMetrics(), logger: quietLogger(), redisBatch: 16)
        let n = try await replay.reconcile([1: [4: 180]], from: [1: 0], sink: sink, pending: pending)
        #expect(n == 1)
        let records = try await h.readTopic(h.topics.state).filter { $0.partition == 1 }.sorted { $0.offset < $1.offset }
        #expect(records.count == 3)
        #expect(try UserState.decode(records.last!.value).source?.offset == 250, "the newest state is the last record again")
    }

    @Test func timeFlagsAcceptMillisecondsAndISO8601() throws {
        #expect(try parseTime("1795700000000", flag: "--from") == 1_795_700_000_000)
        #expect(try parseTime("2026-11-20T08:00:00Z", flag: "--from") == 1_795_161_600_000)
        #expect(try parseTime("2026-11-20T08:00:00.250Z", flag: "--from") == 1_795_161_600_250)
        #expect(try parseTime("2026-11-20", flag: "--from") == 1_795_132_800_000)
        #expect(throws: CLIError.self) { try parseTime("yesterday", flag: "--from") }
    }
}

// MARK: helpers shared by the replay and batch tests

struct ActivityLog {
    var total = 0
    var valid = 0
    var malformed = 0
    var keyMismatches = 0
    var users = 0
}

extension WorkerHarness {
    /// Produces `events` activity events of `users` users (one minute apart, record timestamp =
    /// event time, a few out of order), plus malformed records and key mismatches mixed in.
    func produceActivityLog(users: Int, events: Int, malformed: Int, keyMismatches: Int, startTs: Int64) async throws -> ActivityLog {
        let producer = try self.producer()
        var rng = SeededRandom(seed: 99)
        let actions: [Action] = [.impression, .impression, .impression, .click, .like, .dwell, .hide, .share, .comment]
        var log = ActivityLog(users: users)
        let acked = SharedCounter()
        var records: [OutgoingRecord] = []
        for i in 0..<events {
            let user = Int64(1 + i % users)
            let item = i % 97 == 0 ? 999_999_999 : bundle.items[Int(rng.next() % UInt64(bundle.itemCount))].id
            var ts = startTs + Int64(i) * 60_000
            if i % 50 == 7 { ts -= 3_600_000 }  // out of order
            let e = ActivityEvent(eventId: "e-\(i)", userId: user, itemId: item, action: actions[Int(rng.next() % UInt64(actions.count))],
                                  ts: ts, dwellMs: nil)
            records.append(OutgoingRecord(topic: topics.activity, key: String(user), value: e.jsonBytes(), timestamp: ts))
        }
        log.valid = events
        for j in 0..<malformed {
            let at = Int(rng.next() % UInt64(records.count))
            let bodies = ["{not json", "{\"event_id\":\"x\",\"user_id\":\"7\"}", "{\"event_id\":\"y\",\"user_id\":7,\"item_id\":1,\"action\":\"poke\",\"ts\":5}"]
            records.insert(OutgoingRecord(topic: topics.activity, key: "7", value: Array(bodies[j % 3].utf8), timestamp: records[at].timestamp), at: at)
        }
        for j in 0..<keyMismatches {
            let at = Int(rng.next() % UInt64(records.count))
            let e = ActivityEvent(eventId: "km-\(j)", userId: 5, itemId: bundle.items[0].id, action: .click, ts: startTs)
            records.insert(OutgoingRecord(topic: topics.activity, key: "6", value: e.jsonBytes(), timestamp: records[at].timestamp), at: at)
        }
        log.malformed = malformed
        log.keyMismatches = keyMismatches
        log.total = records.count
        for r in records {
            try await producer.enqueueWaiting(r) { result in if case .success = result { acked.add() } }
        }
        try await producer.flush(timeout: .seconds(60))
        guard Int(acked.current) == records.count else { throw HarnessError("only \(acked.current) of \(records.count) records acknowledged") }
        return log
    }

    /// Per user, the latest record of a state topic (the restore rule: furthest source offset).
    func latestStateRecords(_ topic: String) async throws -> [Int64: KafkaRecord] {
        var out: [Int64: (KafkaRecord, UserState)] = [:]
        for r in try await readTopic(topic).sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) where !r.value.isEmpty {
            let s = try UserState.decode(r.value)
            if let (_, old) = out[s.userId], let a = old.source, let b = s.source, a.partition == b.partition, b.offset < a.offset { continue }
            out[s.userId] = (r, s)
        }
        return out.mapValues(\.0)
    }

    /// Every record of a topic up to its end, read like replay reads (Tansu's ListOffsets
    /// answer stops at the last record batch's base offset; `PartitionScan` reads to the end
    /// the fetch responses report).
    func readTopic(_ topic: String) async throws -> [KafkaRecord] {
        let tps = (0..<Int32(partitions)).map { TopicPartition(topic, $0) }
        let reader = kafka.merging(["fetch.wait.max.ms": "10"])
        let marks = try PartitionScan.watermarks(kafka: reader, tps)
        var out: [KafkaRecord] = []
        try await PartitionScan.read(kafka: reader, ranges: marks.mapValues { PartitionScan.Range(start: $0.low, end: $0.high) }) { r, _ in
            out.append(r)
            return .next
        }
        return out
    }

    /// The true end offset of each partition of a topic (see `readTopic`).
    func endOffsets(_ topic: String) async throws -> [TopicPartition: Int64] {
        let tps = (0..<Int32(partitions)).map { TopicPartition(topic, $0) }
        let reader = kafka.merging(["fetch.wait.max.ms": "10"])
        let marks = try PartitionScan.watermarks(kafka: reader, tps)
        return try await PartitionScan.read(kafka: reader, ranges: marks.mapValues { PartitionScan.Range(start: $0.low, end: $0.high) }) { _, _ in .next }
    }

    /// Whether the worker's group has committed exactly these offsets.
    func committed(_ ends: [TopicPartition: Int64]) throws -> Bool {
        let probe = try KafkaConsumer(configuration: kafka.merging(["group.id": group]), subscription: .assignment([:]))
        defer { probe.close() }
        let committed = try probe.committed(Array(ends.keys))
        return ends.allSatisfy { tp, end in end == 0 || (committed[tp] ?? nil) == end }
    }

    /// Creates more topics with the harness's partition count.
    func createTopics(_ names: [String]) throws {
        let admin = try KafkaAdmin(configuration: kafka)
        let r = try admin.createTopics(names.map { TopicSpec(name: $0, partitions: partitions) })
        for (name, e) in r { if let e, !e.isAlreadyExists { throw HarnessError("create \(name): \(e)") } }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let d = try admin.describeTopics(names)
            if d.count == names.count && d.values.allSatisfy({ $0.partitions == partitions }) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw HarnessError("topics \(names) did not appear")
    }
}
