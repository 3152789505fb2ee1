import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import RedisClient
import ServiceLifecycle
import Synchronization
import TestSupport
import VectorIndex
import Worker

enum Env {
    static func require(_ name: String) throws -> String {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else {
            throw HarnessError("\(name) is not set: run the tests through scripts/test.sh (it starts the broker and Redis)")
        }
        return v
    }
    static var brokers: String { get throws { try require("FEEDRANK_TEST_BROKERS") } }
    static var redis: String { get throws { try require("FEEDRANK_TEST_REDIS") } }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One isolated FeedRank world for a test: unique topics and group, its own Redis database,
/// a synthetic bundle, and helpers to run workers (in process or as `feedrank serve`
/// processes), produce input and read output.
final class WorkerHarness: @unchecked Sendable {
    let id = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    let partitions: Int
    let topics: TopicNames
    let group: String
    let redisDB: Int
    let bundleDir = ScratchDirectory("harness-bundle")
    let spec: SyntheticBundle
    let bundle: ModelBundle
    let catalog: RankingCatalog
    let brokers: String
    let redisURL: String

    init(partitions: Int = 4, redisDB: Int, items: Int = 3000, categories: Int = 20) throws {
        self.partitions = partitions
        var t = TopicNames()
        t.activity = "it-\(id)-activity"
        t.requests = "it-\(id)-requests"
        t.responses = "it-\(id)-responses"
        t.deadLetter = "it-\(id)-dlq"
        t.state = "it-\(id)-state"
        topics = t
        group = "it-\(id)"
        self.redisDB = redisDB
        brokers = try Env.brokers
        redisURL = try Env.redis + "/\(redisDB)"
        var s = SyntheticBundle()
        s.items = items
        s.categories = categories
        s.dimension = 16
        s.creators = items / 4
        s.hidden = [32]
        s.promotedEvery = 100
        spec = s
        try s.write(to: bundleDir.path)
        bundle = try ModelBundle.load(directory: bundleDir.path)
        let index = try RankingIndexBuilder.build(bundle: bundle, configuration: IVFPQConfiguration(
            dimension: 16, nlist: 32, subquantizers: 8, bitsPerCode: 4))
        catalog = try RankingCatalog(bundle: bundle, index: index)
        try createTopics()
        _ = try RedisClient(url: redisURL).pipelineSync([RedisCommand("FLUSHDB", [])])
    }

    var kafka: KafkaConfiguration {
        KafkaConfiguration(brokers: brokers, ["topic.metadata.refresh.interval.ms": "1000"])
    }

    func createTopics() throws {
        let admin = try KafkaAdmin(configuration: kafka)
        let specs = [topics.activity, topics.requests, topics.state, topics.responses, topics.deadLetter].map {
            TopicSpec(name: $0, partitions: partitions)
        }
        let r = try admin.createTopics(specs)
        for (name, e) in r { if let e, !e.isAlreadyExists { throw HarnessError("create \(name): \(e)") } }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let d = try admin.describeTopics(specs.map(\.name))
            if d.count == specs.count && d.values.allSatisfy({ $0.partitions == partitions }) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw HarnessError("topics did not appear")
    }

    func workerConfiguration() -> WorkerConfiguration {
        var c = WorkerConfiguration(kafka: KafkaConfiguration(brokers: brokers, [
            "fetch.wait.max.ms": "10", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500",
            "topic.metadata.refresh.interval.ms": "1000",
        ]))
        c.group = group
        c.topics = topics
        c.redisURL = redisURL
        c.lanes = 2
        c.refreshWindowMs = 100
        return c
    }

    // MARK: in-process workers

    final class Running: @unchecked Sendable {
        let worker: StreamWorker
        let group: ServiceGroup
        let task: Task<Void, Error>
        init(worker: StreamWorker, group: ServiceGroup, task: Task<Void, Error>) {
            self.worker = worker; self.group = group; self.task = task
        }
        /// Graceful shutdown (what SIGTERM does) and wait for it.
        func stop() async throws {
            await group.triggerGracefulShutdown()
            try await task.value
        }
    }

    func startWorker() -> Running {
        var logger = Logger(label: "it.worker")
        logger.logLevel = .warning
        let worker = StreamWorker(configuration: workerConfiguration(), catalog: catalog, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: worker)], logger: logger))
        let task = Task { try await group.run() }
        return Running(worker: worker, group: group, task: task)
    }

    /// Waits until the worker owns `count` partitions and is running.
    func waitOwning(_ w: StreamWorker, _ count: Int, within seconds: Double = 40) async throws {
        try await waitFor(seconds, "worker to own \(count) partitions") {
            let h = w.health()
            return h.phase == "running" && h.partitions.count == count
        }
    }

    // MARK: Kafka I/O

    func producer() throws -> KafkaProducer {
        try KafkaProducer(configuration: kafka.merging(["message.max.bytes": "16000000"]))
    }

    func send(_ producer: KafkaProducer, topic: String, key: String?, value: [UInt8]) async throws {
        _ = try await producer.send(OutgoingRecord(topic: topic, key: key, value: value))
    }

    /// Sends `values` as one burst, the way a client emits a user's burst of events: every record
    /// is handed to the producer in order at once, then all are waited for (sending one and
    /// waiting for its acknowledgement before the next spreads 24 records over ~24 producer
    /// lingers plus broker round trips, longer than the worker's 200 ms coalescing window).
    func sendBurst(_ producer: KafkaProducer, topic: String, key: String?, values: [[UInt8]]) async throws {
        let failures = Mutex<[KafkaError]>([])
        for v in values {
            try await producer.enqueueWaiting(OutgoingRecord(topic: topic, key: key, value: v)) { result in
                if case .failure(let e) = result { failures.withLock { $0.append(e) } }
            }
        }
        try await producer.flush(timeout: .seconds(30))
        if let e = failures.withLock({ $0.first }) { throw e }
    }

    /// Reads every record of a topic from the beginning to its current end.
    func readAll(_ topic: String, upTo timeout: Double = 60) async throws -> [KafkaRecord] {
        let tps = (0..<partitions).map { TopicPartition(topic, Int32($0)) }
        var out: [KafkaRecord] = []
        try await KafkaConsumer.readToEnd(configuration: kafka.merging(["fetch.wait.max.ms": "10"]),
                                          from: Dictionary(uniqueKeysWithValues: tps.map { ($0, KafkaOffset.beginning) }),
                                          timeout: .seconds(timeout)) { out.append($0) }
        return out
    }

    /// Consumes a topic from its current end, collecting records into `sink`.
    final class Tail: @unchecked Sendable {
        let records = LockedBox<[KafkaRecord]>([])
        private var task: Task<Void, Never>?
        private let consumer: KafkaConsumer
        init(_ harness: WorkerHarness, topic: String) throws {
            var start: [TopicPartition: Int64] = [:]
            let probe = try KafkaConsumer(configuration: harness.kafka, subscription: .assignment([:]))
            for p in 0..<harness.partitions {
                // Tansu may answer with the last batch's base offset: older records can show up; callers match by id.
                let tp = TopicPartition(topic, Int32(p))
                start[tp] = try probe.watermarks(tp).high
            }
            probe.close()
            consumer = try KafkaConsumer(configuration: harness.kafka.merging(["fetch.wait.max.ms": "10", "max.partition.fetch.bytes": "16777216"]),
                                         subscription: .assignment(start))
            task = Task { [records, consumer] in
                do { for try await r in consumer.records { records.withLock { $0.append(r) } } } catch {}
            }
        }
        var count: Int { records.withLock { $0.count } }
        func stop() { consumer.close(); task?.cancel() }
    }

    /// The user states the worker wrote: per user the one with the furthest source offset.
    func latestStates() async throws -> [Int64: UserState] {
        var out: [Int64: UserState] = [:]
        for r in try await readAll(topics.state) {
            let s = try UserState.decode(r.value, manifest: bundle.manifest)
            if let old = out[s.userId], let a = old.source, let b = s.source, a.partition == b.partition, b.offset < a.offset { continue }
            out[s.userId] = s
        }
        return out
    }

    /// The states from applying every activity record of the log exactly once, in partition order.
    func expectedStates() async throws -> [Int64: UserState] {
        let records = try await readAll(topics.activity).sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
        let updater = StateUpdater(bundle: bundle)
        var states: [Int64: UserState?] = [:]
        for r in records {
            guard let e = try? ActivityEvent.parse(r.value), r.keyString == String(e.userId) else { continue }
            var s = states[e.userId] ?? nil
            _ = try updater.apply(e, to: &s, source: SourcePosition(partition: r.partition, offset: r.offset))
            states[e.userId] = s
        }
        return states.compactMapValues { $0 }
    }

    /// Committed offsets of the worker's group == the end of both input topics (the ends are
    /// found by reading, since Tansu's ListOffsets answer is not the end).
    func allCommitted() async throws -> Bool {
        var ends: [TopicPartition: Int64] = [:]
        for topic in [topics.activity, topics.requests] {
            for r in try await readAll(topic) { ends[r.topicPartition] = max(ends[r.topicPartition] ?? 0, r.offset + 1) }
        }
        let probe = try KafkaConsumer(configuration: kafka.merging(["group.id": group]), subscription: .assignment([:]))
        defer { probe.close() }
        let committed = try probe.committed(Array(ends.keys))
        return ends.allSatisfy { committed[$0.key] == .some($0.value) }
    }

    func redis() throws -> RedisClient { try RedisClient(url: redisURL) }

    // MARK: records

    func activity(_ user: Int64, item: Int64, _ action: Action, ts: Int64, id: String) -> [UInt8] {
        ActivityEvent(eventId: id, userId: user, itemId: item, action: action, ts: ts).jsonBytes()
    }

    func request(_ id: String, user: Int64, numItems: Int = 50, fresh: Bool = true, ts: Int64? = nil) -> [UInt8] {
        RankingRequest(requestId: id, userId: user, numItems: numItems, contextTs: ts ?? spec.now, device: "ios", fresh: fresh).jsonBytes()
    }
}

func waitFor(_ seconds: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while try await !condition() {
        if ContinuousClock.now > deadline { throw HarnessError("timed out after \(seconds) s waiting for \(what)") }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
}

/// A value behind a lock that escaping closures can share.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }
}
