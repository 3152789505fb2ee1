import ArgumentParser
import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import Synchronization

/// `feedrank loadgen`: real traffic through Kafka for the demo and for measurements — replays
/// user-activity records, sends ranking requests, collects the responses (latency, status),
/// and can tell the story of one user whose feed changes as they click.
struct LoadgenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Send activity and ranking requests through Kafka and report what comes back.")

    @Option(help: "Kafka bootstrap servers.") var brokers = "127.0.0.1:9092"
    @Option(help: "Model bundle (for item categories in printed feeds and for the click story).") var bundle: String?
    @Option(help: "user-activity records to replay (JSON lines); timestamps are shifted so the last one is now.") var events: String?
    @Option(help: "Ranking requests to send.") var requests = 0
    @Option(help: "Requests per second (0: as fast as possible).") var rate = 0.0
    @Option(name: .customLong("users"), help: "User ids LO:HI for requests.") var users = "1:1000"
    @Option(name: .customLong("num-items")) var numItems = 50
    @Option(help: "Tell the story of this user: feed, clicks on another category, the re-ranked feed.") var story: Int64?
    @Option(help: "Seconds to wait for responses.") var timeout = 60.0
    @Option(name: .customLong("kafka"), help: "A librdkafka property KEY=VALUE (repeatable).") var kafka: [String] = []
    @Option(name: .customLong("activity-topic")) var activityTopic = "user-activity"
    @Option(name: .customLong("requests-topic")) var requestsTopic = "ranking-requests"
    @Option(name: .customLong("responses-topic")) var responsesTopic = "ranking-responses"

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .error
            return h
        }
        let extra: [String: String]
        do { extra = try KafkaConfiguration.parsePairs(kafka) } catch { throw CLIError.usage("\(error)") }
        let conf = KafkaConfiguration(brokers: brokers, extra)
        let producer = try KafkaProducer(configuration: conf)
        defer { producer.close() }
        let collector = try ResponseCollector(configuration: conf, topic: responsesTopic)
        let b = try bundle.map { try CatalogLoader.loadBundle($0, logger: Logger(label: "loadgen")) }

        if let events { try await replay(events, producer: producer) }
        if let story {
            guard let b else { throw CLIError.usage("--story needs --bundle") }
            try await tellStory(user: story, bundle: b, producer: producer, collector: collector)
        }
        if requests > 0 { try await sendRequests(producer: producer, collector: collector) }
        collector.stop()
    }

    // MARK: activity replay

    private func replay(_ path: String, producer: KafkaProducer) async throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError.usage("--events \(path): cannot read the file") }
        var parsed: [ActivityEvent] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            do { parsed.append(try ActivityEvent.parse(Array(line))) } catch {
                throw CLIError.usage("--events \(path):\(n + 1): \(error.message)")
            }
        }
        guard let last = parsed.map(\.ts).max() else { return }
        let shift = nowMs() - last
        let started = ContinuousClock.now
        let acked = Atomic<Int>(0)
        for var e in parsed {
            e.ts += shift
            let rec = OutgoingRecord(topic: activityTopic, key: String(e.userId), value: e.jsonBytes())
            try await enqueue(producer, rec) { acked.add(1, ordering: .relaxed) }
        }
        try await producer.flush(timeout: .seconds(60))
        let secs = (ContinuousClock.now - started).seconds
        print(String(format: "replayed %d activity events (timestamps shifted by %+.1f h) in %.2f s: %.0f events/s",
                     acked.load(ordering: .relaxed), Double(shift) / 3.6e6, secs, Double(parsed.count) / secs))
    }

    // MARK: requests

    private func sendRequests(producer: KafkaProducer, collector: ResponseCollector) async throws {
        let parts = users.split(separator: ":").compactMap { Int64($0) }
        guard parts.count == 2, parts[0] <= parts[1] else { throw CLIError.usage("--users \(users): expected LO:HI") }
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let started = ContinuousClock.now
        for i in 0..<requests {
            if rate > 0 {
                let due = started + .nanoseconds(Int64(Double(i) / rate * 1e9))
                if due > .now { try await Task.sleep(until: due, clock: .continuous) }
            }
            let user = Int64.random(in: parts[0]...parts[1])
            let req = RankingRequest(requestId: "\(run)-\(i)", userId: user, numItems: numItems, contextTs: nil,
                                     device: ["ios", "android", "web"].randomElement(), fresh: true, replyTo: nil)
            collector.expect(req.requestId)
            try await enqueue(producer, OutgoingRecord(topic: requestsTopic, key: String(user), value: req.jsonBytes())) {}
        }
        let sendSecs = (ContinuousClock.now - started).seconds
        let deadline = ContinuousClock.now + .seconds(timeout)
        while collector.outstanding > 0 && ContinuousClock.now < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        let s = collector.summary()
        let total = (ContinuousClock.now - started).seconds
        print(String(format: "requests: %d sent in %.2f s, %d ok, %d error, %d missing; end-to-end p50 %.1f ms, p99 %.1f ms, max %.1f ms; %.0f responses/s",
                     requests, sendSecs, s.ok, s.errors, s.missing, s.p50, s.p99, s.max, Double(s.ok + s.errors) / max(total, 1e-9)))
        if s.missing > 0 { throw CLIError.runtime("\(s.missing) request(s) got no response within \(timeout) s") }
    }

    // MARK: the story of one user

    private func tellStory(user: Int64, bundle b: ModelBundle, producer: KafkaProducer, collector: ResponseCollector) async throws {
        let cats = b.manifest.categories
        func show(_ r: RankingResponse, _ title: String) {
            print("\n\(title) (trigger \(r.trigger.rawValue), \(r.items.count) items, latency \(r.latencyMs) ms)")
            for item in r.items.prefix(12) {
                let it = b.item(id: item.itemId)
                let cat = it.map { cats[$0.category] } ?? "?"
                let why = item.reasons.isEmpty ? "" : "  [" + item.reasons.joined(separator: ", ") + "]"
                print(String(format: "  %2d. item %-7lld %-14@ score %.4f%@", item.rank, item.itemId, cat, item.score, why))
            }
        }
        func counts(_ r: RankingResponse) -> [String: Int] {
            var c: [String: Int] = [:]
            for item in r.items.prefix(20) { if let it = b.item(id: item.itemId) { c[cats[it.category], default: 0] += 1 } }
            return c
        }
        let before = try await request(user: user, producer: producer, collector: collector)
        show(before, "user \(user): feed before")
        // A category the user barely sees: the least represented among the whole list's categories, else any other.
        let shown = counts(before)
        guard let target = cats.filter({ shown[$0] == nil }).first ?? cats.min(by: { shown[$0, default: 0] < shown[$1, default: 0] }),
              let targetIndex = b.manifest.categoryIndex(of: target) else { return }
        let seen = Set(before.items.map(\.itemId))
        let picks = b.items.filter { $0.category == targetIndex && !$0.promoted && $0.quality >= 0.6 && !seen.contains($0.id) }.prefix(6)
        print("\nuser \(user) clicks and likes \(picks.count) \(target) items...")
        collector.watchActivity(user: user)
        // One burst: every click is enqueued before any is awaited, so they reach the worker
        // within its coalescing window (200 ms) and give one re-rank. Awaiting each record's
        // acknowledgement spread them over more than the window: the first re-rank then held only
        // the first clicks, and the story printed it as "after".
        let t0 = nowMs()
        for (i, item) in picks.enumerated() {
            for (j, action) in [Action.click, .like].enumerated() {
                let e = ActivityEvent(eventId: "story-\(user)-\(t0)-\(i)-\(j)", userId: user, itemId: item.id, action: action, ts: t0 + Int64(i * 2 + j))
                try await enqueue(producer, OutgoingRecord(topic: activityTopic, key: String(user), value: e.jsonBytes())) {}
            }
        }
        try await producer.flush(timeout: .seconds(timeout))
        // The feed after the clicks is the last re-rank: wait for the first, then until none has
        // arrived for a second (a burst split across two windows still ends with a re-rank of the
        // state holding every click).
        let deadline = ContinuousClock.now + .seconds(timeout)
        var refreshes: [RankingResponse] = []
        var lastArrival = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let new = collector.takeActivity(user: user)
            if !new.isEmpty { refreshes += new; lastArrival = .now }
            if !refreshes.isEmpty && ContinuousClock.now - lastArrival > .seconds(1) { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        guard let after = refreshes.last else { throw CLIError.runtime("no event-driven re-rank of user \(user) arrived within \(timeout) s") }
        show(after, "user \(user): feed after the clicks (published by the worker on its own; \(picks.count * 2) events, \(refreshes.count) re-rank\(refreshes.count == 1 ? "" : "s"))")
        let (was, now) = (shown[target, default: 0], counts(after)[target, default: 0])
        print("\n\(target) items in the top 20: \(was) before, \(now) after")
        if now <= was { throw CLIError.runtime("the clicks did not move \(target) up in user \(user)'s re-ranked feed (\(was) -> \(now) in the top 20)") }
    }

    private func request(user: Int64, producer: KafkaProducer, collector: ResponseCollector) async throws -> RankingResponse {
        let req = RankingRequest(requestId: "story-\(user)-\(nowMs())", userId: user, numItems: numItems, fresh: true)
        collector.expect(req.requestId)
        _ = try await producer.send(OutgoingRecord(topic: requestsTopic, key: String(user), value: req.jsonBytes()))
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if let r = collector.response(req.requestId) { return r }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        throw CLIError.runtime("no response to \(req.requestId) within \(timeout) s — is `feedrank serve` running?")
    }

    private func enqueue(_ producer: KafkaProducer, _ rec: OutgoingRecord, onAck: @escaping @Sendable () -> Void) async throws {
        try await producer.enqueueWaiting(rec) { r in if case .success = r { onAck() } }
    }
}

func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Reads the response topic from its current end and matches responses to requests.
final class ResponseCollector: @unchecked Sendable {
    private let consumer: KafkaConsumer
    private let lock = NSLock()
    private var sent: [String: ContinuousClock.Instant] = [:]
    private var got: [String: RankingResponse] = [:]
    private var latencies: [Double] = []
    private var errors = 0
    private var watched: Set<Int64> = []
    private var activity: [Int64: [RankingResponse]] = [:]
    private var task: Task<Void, Never>?

    init(configuration: KafkaConfiguration, topic: String) throws {
        let probe = try KafkaConsumer(configuration: configuration, subscription: .assignment([:]))
        let partitions = try probe.topicPartitionCounts()[topic] ?? 0
        guard partitions > 0 else { throw CLIError.runtime("topic \(topic) does not exist (run feedrank topics apply)") }
        var start: [TopicPartition: Int64] = [:]
        for p in 0..<partitions {
            let tp = TopicPartition(topic, Int32(p))
            start[tp] = try probe.watermarks(tp).high
        }
        probe.close()
        consumer = try KafkaConsumer(configuration: configuration.merging(["fetch.wait.max.ms": "10"]), subscription: .assignment(start))
        task = Task { [self] in
            do {
                for try await record in consumer.records { handle(record) }
            } catch {}
        }
    }

    private func handle(_ record: KafkaRecord) {
        let now = ContinuousClock.now
        if let r = try? RankingResponse.parse(record.value) {
            lock.lock(); defer { lock.unlock() }
            if let id = r.requestId, let t = sent.removeValue(forKey: id) {
                got[id] = r
                latencies.append((now - t).seconds * 1000)
            } else if r.trigger == .activity, watched.contains(r.userId) {
                activity[r.userId, default: []].append(r)
            }
        } else if let obj = try? JSONSerialization.jsonObject(with: Data(record.value)) as? [String: Any],
                  obj["status"] as? String == "error", let id = obj["request_id"] as? String {
            lock.lock(); defer { lock.unlock() }
            if sent.removeValue(forKey: id) != nil { errors += 1 }
        }
    }

    func expect(_ id: String) { lock.lock(); sent[id] = .now; lock.unlock() }
    func response(_ id: String) -> RankingResponse? { lock.lock(); defer { lock.unlock() }; return got[id] }
    func watchActivity(user: Int64) { lock.lock(); watched.insert(user); activity[user] = nil; lock.unlock() }
    /// The watched user's activity re-ranks received since the last call, oldest first.
    func takeActivity(user: Int64) -> [RankingResponse] { lock.lock(); defer { lock.unlock() }; return activity.removeValue(forKey: user) ?? [] }
    var outstanding: Int { lock.lock(); defer { lock.unlock() }; return sent.count }

    func summary() -> (ok: Int, errors: Int, missing: Int, p50: Double, p99: Double, max: Double) {
        lock.lock(); defer { lock.unlock() }
        let s = latencies.sorted()
        func q(_ f: Double) -> Double { s.isEmpty ? .nan : s[min(s.count - 1, Int(Double(s.count) * f))] }
        return (latencies.count, errors, sent.count, q(0.5), q(0.99), s.last ?? .nan)
    }

    func stop() {
        task?.cancel()
        consumer.close()
    }
}
