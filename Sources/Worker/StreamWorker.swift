import Dispatch
import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import RedisClient
import ServiceLifecycle
import Synchronization

/// `feedrank serve`'s stream worker: one consumer-group member for `user-activity` and
/// `ranking-requests`, lanes that process partitions concurrently (each partition in order),
/// outputs to Kafka and Redis, and commits of exactly the records whose outputs are
/// acknowledged. A swift-service-lifecycle `Service`: work starts in `run()`; on graceful
/// shutdown it stops fetching, finishes in-flight work, flushes, commits and leaves the group.
public final class StreamWorker: Service, Sendable {
    public let configuration: WorkerConfiguration
    public let catalog: RankingCatalog
    let metrics: WorkerMetrics
    let logger: Logger
    let store = StateStore()
    let tracker = CommitTracker()
    private let phase = Mutex(Phase.starting)
    private let stopping = Atomic<Bool>(false)
    private let consumerRef = Mutex<KafkaConsumer?>(nil)
    private let contextRef = Mutex<WorkerContext?>(nil)
    private let fatal = Mutex<WorkerError?>(nil)
    let http: HTTPRankers

    public enum Phase: String, Sendable { case starting, running, draining, stopped }

    public init(configuration: WorkerConfiguration, catalog: RankingCatalog,
                logger: Logger = Logger(label: "feedrank.worker"), metrics: WorkerMetrics = WorkerMetrics()) {
        self.configuration = configuration
        self.catalog = catalog
        self.logger = logger
        self.metrics = metrics
        self.http = HTTPRankers(catalog: catalog)
    }

    var kafkaProducerConfig: KafkaConfiguration {
        // Room for a dead-lettered record of any size the broker accepts, plus its headers.
        configuration.kafka.merging(["message.max.bytes": "16000000"].merging(
            configuration.kafka.properties.filter { $0.key == "message.max.bytes" }) { _, new in new })
    }

    var consumerConfig: KafkaConfiguration {
        KafkaConfiguration(["fetch.max.bytes": "52428800", "max.partition.fetch.bytes": "16777216"])
            .merging(configuration.kafka.properties)
            .merging(["group.id": configuration.group])
    }

    public func run() async throws {
        let topics = configuration.topics
        let producer = try KafkaProducer(configuration: kafkaProducerConfig,
                                         logger: Logger(label: "feedrank.kafka.producer"))
        let redis = try RedisClient(url: configuration.redisURL, logger: Logger(label: "feedrank.redis"))
        try checkTopics(producer)
        let sink = OutputSink(producer: producer, redis: redis, metrics: metrics, logger: logger,
                              redisBatch: configuration.redisBatch)
        let context = WorkerContext(config: configuration, catalog: catalog, store: store, tracker: tracker,
                                    sink: sink, metrics: metrics, logger: logger)
        contextRef.withLock { $0 = context }
        let lanes = (0..<max(1, configuration.lanes)).map { Lane(id: $0, context: context) }
        let restorer = StateRestorer(kafka: configuration.kafka, topic: topics.state,
                                     manifest: catalog.bundle.manifest, logger: logger)
        let consumer = try KafkaConsumer(
            configuration: consumerConfig, subscription: .group(topics: [topics.activity, topics.requests]),
            bufferCapacity: 10_000, logger: Logger(label: "feedrank.kafka.consumer"),
            onRebalance: { [self] event in
                switch event {
                case .assigned(let tps): assign(tps, restorer: restorer)
                case .revoked(let tps): revoke(tps, lanes: lanes)
                }
            })
        consumerRef.withLock { $0 = consumer }
        phase.withLock { $0 = .running }
        logger.info("worker running", metadata: [
            "group": "\(configuration.group)", "lanes": "\(lanes.count)", "model_version": "\(catalog.bundle.manifest.modelVersion)",
            "items": "\(catalog.bundle.itemCount)", "index": "\(catalog.index.map { "IVF\($0.nlist),\($0.count) items" } ?? "exact")",
        ])

        await withGracefulShutdownHandler {
            // Every error inside is caught and recorded in `fatal`: a plain task group.
            await withTaskGroup(of: Void.self) { group in
                for lane in lanes { group.addTask { await lane.run() } }
                group.addTask { [self] in await periodic(every: .milliseconds(configuration.commitIntervalMs), blocking: true) { self.commit(consumer) } }
                group.addTask { [self] in
                    await periodic(every: .milliseconds(20)) {
                        for l in lanes { l.inbox.push(.tick) }
                        // Sampled here rather than set per record by the dispatcher.
                        let load = self.tracker.load
                        self.metrics.inFlight.record(load.inFlight)
                        self.metrics.uncommitted.record(load.uncommitted)
                    }
                }
                group.addTask { [self] in await periodic(every: .seconds(configuration.lagIntervalSeconds), blocking: true) { self.measureLag(consumer) } }

                // The dispatcher: records to lanes by partition, bounded in-flight work.
                do {
                    for try await record in consumer.records {
                        guard store.owns(record.partition) else { continue }
                        tracker.begin(record.topicPartition, record.offset, outputs: 1)
                        let request = record.topic == configuration.topics.requests
                        lanes[Int(record.partition) % lanes.count].inbox.push(.record(record, receivedAt: .now), request: request)
                        var load = tracker.load
                        while (load.inFlight > configuration.maxInFlight || load.uncommitted > configuration.maxUncommitted)
                                && !stopping.load(ordering: .relaxed) {
                            try await Task.sleep(nanoseconds: 500_000)
                            load = tracker.load
                        }
                    }
                } catch {
                    logger.error("consumer failed: \(error)")
                    fatal.withLock { $0 = $0 ?? WorkerError("consumer failed: \(error)") }
                }
                // Drain: lanes finish what they hold, every output is acknowledged, then commit.
                phase.withLock { $0 = .draining }
                stopping.store(true, ordering: .relaxed)
                logger.info("draining: \(tracker.inFlight) records in flight")
                for lane in lanes { lane.inbox.close() }
                await drain(sink: sink)
                commit(consumer)
                group.cancelAll()
                while let _ = await group.next() {}
            }
        } onGracefulShutdown: { [self] in
            logger.info("graceful shutdown requested")
            stopping.store(true, ordering: .relaxed)
            consumerRef.withLock { $0 }?.stopRecords()
        }
        // Leave the group (the final revoke finds nothing in flight), flush and close.
        await consumer.close()
        try? await producer.flush(timeout: .seconds(10))
        producer.close()
        phase.withLock { $0 = .stopped }
        logger.info("worker stopped")
        if let e = fatal.withLock({ $0 }) { throw e }
    }

    /// Waits until every dispatched record's outputs are acknowledged (bounded).
    private func drain(sink: OutputSink) async {
        let deadline = ContinuousClock.now + .seconds(configuration.drainTimeoutSeconds)
        while tracker.inFlight > 0 && ContinuousClock.now < deadline {
            sink.flushRedis()
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        if tracker.inFlight > 0 {
            logger.error("drain timed out with \(tracker.inFlight) records unacknowledged; they stay uncommitted")
        }
    }

    private func commit(_ consumer: KafkaConsumer, only: Set<TopicPartition>? = nil) {
        let offsets = tracker.pendingCommits(only)
        guard !offsets.isEmpty else { return }
        do {
            try consumer.commitSync(offsets)
            tracker.markCommitted(offsets)
        } catch {
            logger.warning("commit failed (will retry): \(error)")
        }
    }

    private func measureLag(_ consumer: KafkaConsumer) {
        for p in store.ownedPartitions {
            for topic in [configuration.topics.activity, configuration.topics.requests] {
                let tp = TopicPartition(topic, p)
                guard let high = try? consumer.watermarks(tp, timeout: .seconds(2)).high else { continue }
                let committed = (try? consumer.committed([tp], timeout: .seconds(2))[tp]) ?? nil
                metrics.lag(topic: topic, partition: p, max(0, high - (committed ?? 0)))
            }
        }
    }

    /// Runs `body` every `interval`. With `blocking`, the body runs on a Dispatch thread: a
    /// commit or a watermark query waits for the broker, and blocking one of the cooperative
    /// pool's threads (one per core) stalls a processing lane meanwhile.
    private func periodic(every interval: Duration, blocking: Bool = false, _ body: @escaping @Sendable () -> Void) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            if blocking {
                _ = try? await runOffPool(body)
            } else {
                body()
            }
        }
    }

    /// The three co-partitioned topics must exist with one partition count (contract section 1).
    private func checkTopics(_ producer: KafkaProducer) throws {
        let t = configuration.topics
        var counts: [String: Int] = [:]
        for topic in [t.activity, t.requests, t.state, t.responses, t.deadLetter] {
            do { counts[topic] = try producer.partitionCount(topic: topic) } catch let e as KafkaError where e.code == .unknownTopic {
                throw WorkerError("topic \(topic) does not exist: create the topics first (feedrank topics apply)")
            }
        }
        let co = [t.activity, t.requests, t.state].map { counts[$0]! }
        guard Set(co).count == 1 else {
            throw WorkerError("\(t.activity), \(t.requests) and \(t.state) must have the same partition count (co-partitioning), they have \(co)")
        }
    }

    // MARK: rebalances (called on the consumer's poll thread, before librdkafka applies them)

    private func inputPartitions(_ tps: [TopicPartition]) -> Set<Int32> {
        Set(tps.filter { $0.topic == configuration.topics.activity || $0.topic == configuration.topics.requests }.map(\.partition))
    }

    private func assign(_ tps: [TopicPartition], restorer: StateRestorer) {
        let partitions = inputPartitions(tps).sorted().filter { !store.owns($0) }
        var attempt = 0
        while !partitions.isEmpty {
            attempt += 1
            let result = blocking { try await restorer.restore(partitions: partitions, timeout: .seconds(120)) }
            switch result {
            case .success(let restored):
                for p in partitions { store.install(p, restored[p] ?? [:]) }
            case .failure(let e):
                logger.error("restoring partitions \(partitions) failed (attempt \(attempt)): \(e)")
                if attempt < 5 { Thread.sleep(forTimeInterval: 0.5 * Double(attempt)); continue }
                // Processing without the state would double-count or lose events: stop.
                fatal.withLock { $0 = WorkerError("cannot restore the state of partitions \(partitions): \(e)") }
                consumerRef.withLock { $0 }?.stopRecords()
            }
            break
        }
        logger.info("owning partitions \(store.ownedPartitions) (\(store.userCount) users)")
    }

    private func revoke(_ tps: [TopicPartition], lanes: [Lane]) {
        let partitions = inputPartitions(tps)
        guard !partitions.isEmpty else { return }
        let inputs = Set(tps.filter { partitions.contains($0.partition) })
        let deadline = ContinuousClock.now + .seconds(configuration.drainTimeoutSeconds)
        // 1. Lanes publish the pending re-ranks of these partitions (after what they hold).
        if !stopping.load(ordering: .relaxed) {
            let done = DispatchSemaphore(value: 0)
            let countdown = Countdown(lanes.count) { done.signal() }
            for lane in lanes { lane.inbox.push(.flushPartitions(partitions, done: { countdown.done() })) }
            _ = done.wait(timeout: .now() + .seconds(configuration.drainTimeoutSeconds))
        }
        // 2. Stop processing them: later records stay uncommitted for the next owner.
        for p in partitions { store.remove(p) }
        // 3. Wait for the outputs of what was processed, then commit it.
        while tracker.active(inputs) > 0 && ContinuousClock.now < deadline {
            contextRef.withLock { $0 }?.sink.flushRedis()
            Thread.sleep(forTimeInterval: 0.002)
        }
        if let consumer = consumerRef.withLock({ $0 }) { commit(consumer, only: inputs) }
        tracker.remove(inputs)
        logger.info("released partitions \(partitions.sorted())")
    }

    /// Runs async work to completion from a non-async thread (the poll thread).
    private func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> Result<T, Error> {
        let box = Mutex<Result<T, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let r: Result<T, Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            box.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    // MARK: status for HTTP

    public var currentPhase: Phase { phase.withLock { $0 } }

    var contextRefValue: WorkerContext? { contextRef.withLock { $0 } }

    public func health() -> WorkerHealth {
        let consumer = consumerRef.withLock { $0 }
        let context = contextRef.withLock { $0 }
        let kafkaError = consumer?.lastClientError ?? context?.sink.producer.lastClientError
        let redisOK = context?.sink.redis.isConnected ?? false
        return WorkerHealth(
            phase: currentPhase.rawValue, modelLoaded: true, itemCount: catalog.bundle.itemCount,
            modelVersion: catalog.bundle.manifest.modelVersion,
            kafka: consumer == nil ? "connecting" : (kafkaError.map { "error: \($0.message)" } ?? "ok"),
            redis: redisOK ? "ok" : (context?.sink.redis.lastError.map { "error: \($0.message)" } ?? "idle"),
            partitions: store.ownedPartitions, users: store.userCount, inFlight: tracker.inFlight)
    }
}

/// What /health reports.
public struct WorkerHealth: Sendable, Codable {
    public var phase: String
    public var modelLoaded: Bool
    public var itemCount: Int
    public var modelVersion: String
    public var kafka: String
    public var redis: String
    public var partitions: [Int32]
    public var users: Int
    public var inFlight: Int

    public var isReady: Bool { phase == "running" && !kafka.hasPrefix("error") }

    enum CodingKeys: String, CodingKey {
        case phase = "status", modelLoaded = "model_loaded", itemCount = "item_count", modelVersion = "model_version"
        case kafka, redis, partitions, users, inFlight = "in_flight"
    }
}
