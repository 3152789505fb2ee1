import Foundation
import KafkaClient
import Ranking
import RankingModel
import RedisClient
import TestSupport
import Testing
import Worker

@Suite("feedrank serve against the real broker and Redis", .serialized)
struct WorkerIntegrationTests {
    @Test("10,000 ranking requests get exactly one ok response each, every list keeps contract section 3; L1, L2 and L4 are written with their TTLs")
    func tenThousandRequests() async throws {
        let h = try WorkerHarness(redisDB: 2)
        let running = h.startWorker()
        try await h.waitOwning(running.worker, h.partitions)
        let responses = try WorkerHarness.Tail(h, topic: h.topics.responses)
        let producer = try h.producer()

        // Some activity first, so L2/L4 get written and some lists have impressions to avoid.
        var rng = SeededRandom(seed: 5)
        for i in 0..<400 {
            let user = Int64(1 + i % 100)
            let item = h.bundle.items[Int(rng.next() % UInt64(h.bundle.itemCount))].id
            try producer.enqueue(OutgoingRecord(topic: h.topics.activity, key: String(user),
                                                value: h.activity(user, item: item, i % 3 == 0 ? .click : .impression,
                                                                  ts: h.spec.now - Int64(i) * 1000, id: "a\(i)"))) { _ in }
        }
        // The lists are checked against the final states, so let the activity land first.
        try await producer.flush(timeout: .seconds(30))
        try await waitFor(60, "the activity to be applied and committed") { try await h.allCommitted() }
        // L2 and L4 were written by then; their TTLs count down from here (a loaded machine
        // may take minutes for the requests below), so the bounds allow for the time elapsed.
        let activityDone = Date()
        let n = 10_000
        for i in 0..<n {
            let user = Int64(1 + i % 2000)
            try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.requests, key: String(user),
                                                                value: h.request("r\(i)", user: user, numItems: 1 + i % 60)))
        }
        try await producer.flush(timeout: .seconds(60))
        try await waitFor(240, "10,000 responses") {
            responses.records.withLock { recs in Set(recs.compactMap { try? RankingResponse.parse($0.value) }.compactMap(\.requestId)).count } >= n
        }
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let parsed = responses.records.withLock { $0.compactMap { try? RankingResponse.parse($0.value) } }
        let byRequest = Dictionary(grouping: parsed.filter { $0.requestId != nil }, by: { $0.requestId! })
        #expect(byRequest.count == n)
        #expect(byRequest.values.allSatisfy { $0.count == 1 }, "a request got more than one response")
        let states = try await h.latestStates()
        var violations: [String] = []
        for (id, rs) in byRequest {
            let r = rs[0]
            let i = Int(id.dropFirst())!
            #expect(r.trigger == .request)
            #expect(r.items.count == 1 + i % 60, "request \(id): \(r.items.count) items")
            violations += ContractChecker.violations(r.items, bundle: h.bundle, state: states[r.userId], at: h.spec.now,
                                                     numItems: 1 + i % 60).map { "\(id): \($0)" }
        }
        #expect(violations.isEmpty, "\(violations.prefix(10))")

        let redis = try h.redis()
        /// A TTL set to `ttl` seconds at or after `since` (Redis rounds down, allow 2 s more).
        func ttlWithin(_ value: Int64, _ ttl: Int64, since: Date) -> Bool {
            value <= ttl && value >= ttl - Int64(Date().timeIntervalSince(since).rounded(.up)) - 2
        }
        for user in Int64(1)...Int64(50) {
            let replies = try await redis.pipeline([.get(CacheKeys.ranking(user)), .ttl(CacheKeys.ranking(user)),
                                                    .get(CacheKeys.userEmbedding(user)), .ttl(CacheKeys.userEmbedding(user)),
                                                    .get(CacheKeys.features(user)), .ttl(CacheKeys.features(user))])
            let l1 = try #require(try replies[0].bytes())
            #expect(try RankingResponse.parse(l1).userId == user)
            // L1 is written per request (12 h for a request feed), the last one after the requests began.
            let ttlL1 = try replies[1].integer()
            #expect(ttlWithin(ttlL1, 43_200, since: activityDone), "L1 TTL \(ttlL1)")
            let l2 = try #require(try replies[2].bytes())
            #expect(l2.count == 4 * h.bundle.embeddingDimension)
            let u = CacheKeys.floats(l2)
            #expect(abs(u.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4, "L2 holds a unit vector")
            let ttlL2 = try replies[3].integer()
            #expect(ttlWithin(ttlL2, 3_600, since: activityDone), "L2 TTL \(ttlL2)")
            let l4 = try #require(try replies[4].bytes())
            let cached = try UserState.decode(l4, manifest: h.bundle.manifest)
            #expect(cached == states[user], "L4 \(cached.jsonString.prefix(300)) vs topic \(states[user]?.jsonString.prefix(300) ?? "nil")")
            let ttlL4 = try replies[5].integer()
            #expect(ttlWithin(ttlL4, 1_800, since: activityDone), "L4 TTL \(ttlL4)")
        }
        responses.stop()
        producer.close()
        try await running.stop()
    }

    @Test("clicks on one category move it up in the user's next feed, published by the worker itself (trigger activity)")
    func clicksMoveCategoryUp() async throws {
        let h = try WorkerHarness(redisDB: 3)
        let running = h.startWorker()
        try await h.waitOwning(running.worker, h.partitions)
        let responses = try WorkerHarness.Tail(h, topic: h.topics.responses)
        let producer = try h.producer()
        let user: Int64 = 77
        try await h.send(producer, topic: h.topics.requests, key: "77", value: h.request("before", user: user))
        try await waitFor(30, "the first feed") { responses.count >= 1 }
        let before = try RankingResponse.parse(responses.records.withLock { $0[0].value })
        func count(_ r: RankingResponse, _ c: Int) -> Int { r.items.prefix(20).filter { h.bundle.item(id: $0.itemId)?.category == c }.count }
        // The category least present in the first feed.
        let target = (0..<h.bundle.manifest.categoryCount).min { count(before, $0) < count(before, $1) }!
        let items = h.bundle.items.filter { $0.category == target && !$0.promoted && $0.quality > 0.5 }.prefix(8)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var burst: [[UInt8]] = []
        for (i, item) in items.enumerated() {
            for (j, a) in [Action.click, .like, .share].enumerated() {
                burst.append(h.activity(user, item: item.id, a, ts: now + Int64(i * 3 + j), id: "c\(i)-\(j)"))
            }
        }
        try await h.sendBurst(producer, topic: h.topics.activity, key: "77", values: burst)
        try await waitFor(30, "the event-driven re-rank") {
            responses.records.withLock { $0.contains { (try? RankingResponse.parse($0.value))?.trigger == .activity } }
        }
        let after = try responses.records.withLock { recs in
            try recs.compactMap { try? RankingResponse.parse($0.value) }.first { $0.trigger == .activity }!
        }
        #expect(after.requestId == nil)
        #expect(after.userId == user)
        // 20 categories x cap 3 + 3 promoted slots: 50 fit.
        #expect(after.items.count == 50)
        // One burst of 24 events gave one re-rank (coalescing).
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(responses.records.withLock { $0.filter { (try? RankingResponse.parse($0.value))?.trigger == .activity }.count } == 1)
        #expect(count(after, target) > count(before, target), "category \(target): \(count(before, target)) -> \(count(after, target))")
        let l1 = try #require(try await h.redis().get(CacheKeys.ranking(user)))
        #expect(try RankingResponse.parse(l1).trigger == .activity)
        responses.stop()
        producer.close()
        try await running.stop()
    }

    @Test("1,000 malformed records all land in the DLQ with reasons and source headers; requests with ids get error responses; the worker keeps serving")
    func malformedRecords() async throws {
        let h = try WorkerHarness(redisDB: 4)
        let running = h.startWorker()
        try await h.waitOwning(running.worker, h.partitions)
        let dlq = try WorkerHarness.Tail(h, topic: h.topics.deadLetter)
        let responses = try WorkerHarness.Tail(h, topic: h.topics.responses)
        let producer = try h.producer()
        let big = [UInt8](#"{"request_id":"big","user_id":1,"pad":""#.utf8) + [UInt8](repeating: 120, count: 5_000_000) + Array(#""}"#.utf8)
        let requestCases: [(String?, [UInt8], Bool)] = [
            ("1", Array("{not json".utf8), false),
            ("1", Array(#"{"request_id":"ID","user_id":"one"}"#.utf8), true),
            ("1", Array(#"{"request_id":"ID","user_id":1,"num_items":0}"#.utf8), true),
            ("1", Array(#"{"request_id":"ID","user_id":1,"num_items":1000000}"#.utf8), true),
            ("1", Array(#"{"user_id":1,"num_items":5}"#.utf8), false),
            ("2", Array(#"{"request_id":"ID","user_id":1,"num_items":5}"#.utf8), true),
            ("1", Array(#"{"request_id":"ID","user_id":1,"context":{"ts":"yesterday"}}"#.utf8), true),
            (nil, Array(#"{"request_id":"ID","user_id":1}"#.utf8), true),
            ("1", [], false),
        ]
        let activityCases: [(String?, [UInt8])] = [
            ("1", Array("[1,2,3]".utf8)),
            ("1", Array(#"{"event_id":"e","user_id":1,"item_id":5,"action":"poke","ts":1}"#.utf8)),
            ("1", Array(#"{"event_id":"e","user_id":1,"item_id":5,"action":"click"}"#.utf8)),
            ("1", Array(#"{"event_id":"e","user_id":1,"item_id":"x","action":"click","ts":1}"#.utf8)),
            ("1", Array(#"{"event_id":"e","user_id":1,"item_id":5,"action":"click","ts":1,"dwell_ms":-4}"#.utf8)),
            ("9", Array(#"{"event_id":"e","user_id":1,"item_id":5,"action":"click","ts":1}"#.utf8)),
            ("1", Array("\u{0}\u{1}binary".utf8)),
        ]
        var expectedErrors = 0
        var sent = 0
        for i in 0..<998 {
            if i % 2 == 0 {
                let (key, value, hasID) = requestCases[i / 2 % requestCases.count]
                let v = String(decoding: value, as: UTF8.self).replacingOccurrences(of: "\"ID\"", with: "\"bad-\(i)\"")
                try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.requests, key: key, value: Array(v.utf8)))
                if hasID { expectedErrors += 1 }
            } else {
                let (key, value) = activityCases[i / 2 % activityCases.count]
                try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.activity, key: key, value: value))
            }
            sent += 1
        }
        // Two 5 MB records (over the inputs' 1 MiB record limit): a request that is otherwise
        // valid (-> DLQ and an error response) and an activity record.
        try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.requests, key: "1", value: big)); sent += 1; expectedErrors += 1
        try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.activity, key: "1", value: Array(big.prefix(5_000_000)))); sent += 1
        try await producer.flush(timeout: .seconds(60))
        #expect(sent == 1000)
        do { try await waitFor(120, "1,000 dead letters") { dlq.count >= 1000 } } catch {
            Issue.record("\(dlq.count) dead letters; health \(running.worker.health())")
            throw error
        }
        try await Task.sleep(nanoseconds: 500_000_000)
        let letters = dlq.records.withLock { $0 }
        #expect(letters.count == 1000)
        for r in letters {
            let error = r.header("error")?.stringValue ?? ""
            #expect(!error.isEmpty)
            #expect(error.contains("record") || error.contains("disagrees") || error.contains("limit"), "unclear reason: \(error)")
            #expect([h.topics.activity, h.topics.requests].contains(r.header("source_topic")?.stringValue ?? ""))
            #expect(r.header("source_partition").flatMap { $0.stringValue.flatMap(Int.init) } != nil)
            #expect(r.header("source_offset").flatMap { $0.stringValue.flatMap(Int64.init) } != nil)
        }
        #expect(letters.contains { $0.value.count == big.count }, "the 5 MB record is dead-lettered unchanged")
        try await waitFor(60, "error responses") {
            responses.records.withLock { $0.filter { String(decoding: $0.value.prefix(40), as: UTF8.self).contains("\"error\"") }.count } >= expectedErrors
        }
        // Still serving.
        try await h.send(producer, topic: h.topics.requests, key: "5", value: h.request("alive", user: 5))
        try await waitFor(30, "a normal response after the bad input") {
            responses.records.withLock { $0.contains { (try? RankingResponse.parse($0.value))?.requestId == "alive" } }
        }
        #expect(running.worker.health().phase == "running")
        dlq.stop(); responses.stop(); producer.close()
        try await running.stop()
    }

    @Test("two workers in one group share the partitions; when one stops, the other takes its partitions and state without losing or double-applying events")
    func twoWorkersHandover() async throws {
        let h = try WorkerHarness(redisDB: 5)
        let a = h.startWorker()
        try await h.waitOwning(a.worker, h.partitions)
        let b = h.startWorker()
        try await waitFor(60, "the two workers to split the partitions") {
            let pa = a.worker.health().partitions, pb = b.worker.health().partitions
            return pa.count + pb.count == h.partitions && !pa.isEmpty && !pb.isEmpty && Set(pa).isDisjoint(with: pb)
        }
        let producer = try h.producer()
        var rng = SeededRandom(seed: 11)
        func burst(_ from: Int, _ to: Int) async throws {
            for i in from..<to {
                let user = Int64(1 + rng.next() % 300)
                let item = h.bundle.items[Int(rng.next() % UInt64(h.bundle.itemCount))].id
                try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.activity, key: String(user),
                    value: h.activity(user, item: item, [.click, .impression, .like][i % 3], ts: h.spec.now + Int64(i), id: "h\(i)")))
            }
            try await producer.flush(timeout: .seconds(30))
        }
        try await burst(0, 3000)
        try await b.stop()  // graceful: drains, commits, leaves the group
        try await h.waitOwning(a.worker, h.partitions, within: 60)
        try await burst(3000, 6000)
        try await waitFor(120, "every activity record to be committed") { try await h.allCommitted() }
        let expected = try await h.expectedStates()
        let actual = try await h.latestStates()
        #expect(actual.count == expected.count)
        for (user, s) in expected {
            #expect(actual[user] == s, "user \(user): the state differs from applying the log once")
        }
        producer.close()
        try await a.stop()
    }
}

func enqueueRetrying(_ producer: KafkaProducer, _ record: OutgoingRecord) async throws {
    try await producer.enqueueWaiting(record) { _ in }
}
