import CRdKafka
import DequeModule
import Dispatch
import Logging
import Synchronization

/// Special offsets for `KafkaConsumer.Subscription.assignment` and `seek`.
public enum KafkaOffset {
    public static let beginning: Int64 = -2
    public static let end: Int64 = -1
    /// The group's committed offset (needs a group id).
    public static let stored: Int64 = -1000
}

/// What a rebalance did to this member. Delivered synchronously on the consumer's poll
/// thread *before* librdkafka applies it: on `.assigned`, no record of those partitions has
/// been delivered yet (restore state first); on `.revoked`, finish and commit the
/// partitions' in-flight work before returning (buffered records of them are dropped).
public enum RebalanceEvent: Sendable, Equatable {
    case assigned([TopicPartition])
    case revoked([TopicPartition])
}

/// A Kafka consumer: a group member (`subscribe`) or a plain reader of explicit partitions.
///
/// Records arrive through `records`, an `AsyncSequence` fed by a Swift-owned poll thread
/// through a bounded buffer, taken from each partition's queue in turns; while the buffer is
/// full the poll thread takes no records (librdkafka stops fetching at its pre-fetch limits)
/// but still serves rebalances. Offsets are never committed automatically: call `commit`
/// with what has been processed.
public final class KafkaConsumer: Sendable {
    public enum Subscription: Sendable {
        /// Join the group of `group.id` and consume these topics.
        case group(topics: [String])
        /// Read these partitions from these offsets (no group membership, no commits).
        case assignment([TopicPartition: Int64])
    }

    public typealias RebalanceHandler = @Sendable (RebalanceEvent) -> Void

    let core: ConsumerCore
    private let poller: PollThread

    /// FeedRank's consumer defaults; `configuration` wins over them.
    public static let defaults: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",  // co-partitioning: partition p of every topic to one member
        "session.timeout.ms": "6000",
        // Each partition has its own queue (see ConsumerCore.step), and with separate partition
        // queues librdkafka applies this pre-fetch limit per partition: the default 64 MB times
        // 24 input partitions could hold 1.5 GB for a worker that fell behind. 4 MB is ~37,000
        // records of this product's size per partition.
        "queued.max.messages.kbytes": "4096",
        // At that limit the next fetch of the partition waits this long (default 1 s).
        "fetch.queue.backoff.ms": "50",
    ]

    public init(configuration: KafkaConfiguration, subscription: Subscription,
                bufferCapacity: Int = 10_000,
                logger: Logger = Logger(label: "feedrank.kafka.consumer"),
                onRebalance: RebalanceHandler? = nil) throws {
        var conf = KafkaConfiguration(Self.defaults).merging(configuration.properties)
        if case .assignment = subscription, conf["group.id"] == nil {
            // librdkafka routes fetched records to the consumer queue only with a group id;
            // an assignment-only reader never joins or commits to it.
            conf["group.id"] = "feedrank-reader-\(UInt64.random(in: 0...UInt64.max))"
        }
        if case .group = subscription, conf["group.id"] == nil {
            throw KafkaError(code: .configuration, message: "a group consumer needs group.id")
        }
        let handle = try RDKafkaHandle(kind: .consumer, configuration: conf,
                                       events: RD_KAFKA_EVENT_FETCH | RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR
                                           | RD_KAFKA_EVENT_REBALANCE | RD_KAFKA_EVENT_OFFSET_COMMIT)
        rd_kafka_poll_set_consumer(handle.pointer)
        let core = ConsumerCore(handle: handle, capacity: max(1, bufferCapacity), logger: logger,
                                onRebalance: onRebalance)
        switch subscription {
        case .group(let topics):
            let list = RDKafkaTopicPartitionList(topics.map { (TopicPartition($0, RD_KAFKA_PARTITION_UA), nil) })
            let err = rd_kafka_subscribe(handle.pointer, list.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError.from(err, context: "subscribe to \(topics.joined(separator: ","))")
            }
            core.subscribed = true
        case .assignment(let offsets):
            core.splitQueues(Array(offsets.keys))
            let list = RDKafkaTopicPartitionList(offsets.map { ($0.key, $0.value) })
            let err = rd_kafka_assign(handle.pointer, list.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError.from(err, context: "assign \(offsets.keys.map(\.description).sorted())")
            }
            core.state.withLock { $0.assignment = Set(offsets.keys) }
        }
        self.core = core
        self.poller = PollThread(name: "feedrank-kafka-consumer", step: { core.step() }, drain: { core.shutdown() })
    }

    deinit {
        poller.stop()
    }

    /// The records, in partition order. Iterate from one task only. Ends after `close()`;
    /// throws if the client hits a fatal error.
    public var records: KafkaRecordSequence { KafkaRecordSequence(core: core) }

    /// Records plus end-of-partition events (set `enable.partition.eof=true`). Use this or
    /// `records`, not both.
    public var events: KafkaEventSequence { KafkaEventSequence(core: core) }

    /// Reads the given partitions from `start` to their current end (detected from fetch
    /// responses, not from ListOffsets, which some brokers answer wrongly), handing each record
    /// to `body`. For restoring state from a changelog and for tests.
    public static func readToEnd(configuration: KafkaConfiguration, from start: [TopicPartition: Int64],
                                 timeout: Duration = .seconds(60),
                                 _ body: (KafkaRecord) throws -> Void) async throws {
        guard !start.isEmpty else { return }
        let reader = try KafkaConsumer(configuration: configuration.merging(["enable.partition.eof": "true"]),
                                       subscription: .assignment(start))
        let watchdog = Task { try? await Task.sleep(for: timeout); await reader.close() }
        var open = Set(start.keys)
        do {
            for try await event in reader.events {
                switch event {
                case .record(let r): try body(r)
                case .endOfPartition(let tp, _): open.remove(tp)
                }
                if open.isEmpty { break }
            }
        } catch {
            watchdog.cancel()
            await reader.close()
            throw error
        }
        watchdog.cancel()
        await reader.close()
        if open.isEmpty { return }
        throw KafkaError(code: .timedOut, message: "reading \(open.map(\.description).sorted()) to the end took longer than \(timeout)",
                         isRetryable: true)
    }

    /// Partitions currently assigned to this member.
    public var assignment: Set<TopicPartition> { core.state.withLock { $0.assignment } }

    /// Commits `offsets` (the next offset to read per partition, i.e. last processed + 1)
    /// synchronously. Blocking: prefer the async form from async code.
    public func commitSync(_ offsets: [TopicPartition: Int64]) throws {
        guard !offsets.isEmpty else { return }
        let list = RDKafkaTopicPartitionList(offsets.map { ($0.key, $0.value) })
        let err = rd_kafka_commit(core.handle.pointer, list.pointer, 0)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
            throw KafkaError.from(err, context: "commit of \(offsets.count) partition(s)")
        }
        for (tp, _, e) in list.entries where e != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(e, context: "commit of \(tp)")
        }
    }

    /// Commits without blocking the cooperative thread pool.
    public func commit(_ offsets: [TopicPartition: Int64]) async throws {
        guard !offsets.isEmpty else { return }
        try await offload { try self.commitSync(offsets) }
    }

    /// Stops fetching these partitions (records already buffered are still delivered).
    public func pause(_ partitions: [TopicPartition]) throws {
        try core.setPaused(partitions, true)
    }

    public func resume(_ partitions: [TopicPartition]) throws {
        try core.setPaused(partitions, false)
    }

    /// Moves the fetch position of assigned partitions.
    public func seek(_ offsets: [TopicPartition: Int64], timeout: Duration = .seconds(10)) throws {
        let list = RDKafkaTopicPartitionList(offsets.map { ($0.key, $0.value) })
        if let err = rd_kafka_seek_partitions(core.handle.pointer, list.pointer, timeout.milliseconds) {
            throw KafkaError.consuming(err, context: "seek")
        }
        for (tp, _, e) in list.entries where e != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(e, context: "seek \(tp)")
        }
        // Records fetched before the seek must not be delivered after it.
        core.purge(Set(offsets.keys))
    }

    /// Low and high watermark (the offset the next produced record will get) of a partition.
    /// Note: Tansu 0.6 answers the high watermark with the base offset of the last batch; to
    /// read a partition to its end use `readToEnd` / `events`, which judge from fetch responses.
    public func watermarks(_ tp: TopicPartition, timeout: Duration = .seconds(10)) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0, high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(core.handle.pointer, tp.topic, tp.partition, &low, &high,
                                                   timeout.milliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "watermarks of \(tp)") }
        return (low, high)
    }

    /// The watermarks of a partition as the last fetch response reported them (no broker round
    /// trip; nil before the first fetch of it). Tansu's ListOffsets answer (`watermarks`) is the
    /// base offset of the partition's last record batch + 1, short of the end when that batch
    /// holds several records; its fetch responses carry the true high watermark.
    public func fetchedWatermarks(_ tp: TopicPartition) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1, high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(core.handle.pointer, tp.topic, tp.partition, &low, &high)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return (low, high)
    }

    /// For each partition, the earliest offset whose timestamp is >= the given time (ms);
    /// the high watermark when there is none. (Tansu answers with the earliest offset:
    /// callers must still skip older records themselves.)
    public func offsets(forTimes times: [TopicPartition: Int64], timeout: Duration = .seconds(10)) throws -> [TopicPartition: Int64] {
        let list = RDKafkaTopicPartitionList(times.map { ($0.key, $0.value) })
        let err = rd_kafka_offsets_for_times(core.handle.pointer, list.pointer, timeout.milliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "offsets for times") }
        var out: [TopicPartition: Int64] = [:]
        for (tp, offset, e) in list.entries {
            if e != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(e, context: "offset for time of \(tp)") }
            out[tp] = offset == KafkaOffset.end ? try watermarks(tp, timeout: timeout).high : offset
        }
        return out
    }

    /// The group's committed offsets (nil entries: nothing committed yet).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws -> [TopicPartition: Int64?] {
        let list = RDKafkaTopicPartitionList(partitions.map { ($0, nil) })
        let err = rd_kafka_committed(core.handle.pointer, list.pointer, timeout.milliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "committed offsets") }
        var out: [TopicPartition: Int64?] = [:]
        for (tp, offset, _) in list.entries { out[tp] = offset >= 0 ? offset : nil }
        return out
    }

    /// Partition counts of the cluster's topics.
    public func topicPartitionCounts(timeout: Duration = .seconds(10)) throws -> [String: Int] {
        try core.handle.topicPartitionCounts(timeoutMs: timeout.milliseconds)
    }

    /// The last client-level error (broker down, ...), nil while healthy.
    public var lastClientError: KafkaError? { core.state.withLock { $0.lastError } }

    /// Ends `records` (the current iteration returns nil) while staying in the group: the poll
    /// thread keeps serving rebalances and commits still work. For an orderly shutdown: stop
    /// the records, finish and commit in-flight work, then `close()`.
    public func stopRecords() {
        core.finishRecords()
    }

    /// Leaves the group (revoking partitions through the rebalance handler), stops the poll
    /// thread and ends `records`. Blocking; idempotent.
    public func close() {
        poller.stop()
    }

    public func close() async {
        await offload { self.close() }
    }
}

/// Runs blocking work on a global dispatch queue, off the cooperative pool.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { cont in
        DispatchQueue.global().async { cont.resume(with: Result { try body() }) }
    }
}

func offload(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().async { body(); cont.resume() }
    }
}
