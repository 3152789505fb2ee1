import CRdKafka
#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import Logging
import Synchronization

/// The consumer's shared state: a bounded record buffer, the assignment, the partitions'
/// queues and the poll-thread logic. Transitions happen under one lock; continuations are
/// resumed and C calls made after unlocking.
final class ConsumerCore: @unchecked Sendable {
    struct State {
        var buffer = Deque<ConsumerEvent>()
        var waiter: CheckedContinuation<ConsumerEvent?, Error>?
        /// nil while running; set when the stream has ended (nil error = closed normally).
        var finished: KafkaError?? = nil
        var assignment = Set<TopicPartition>()
        var lastError: KafkaError?
    }

    let handle: RDKafkaHandle
    let state = Mutex(State())
    let capacity: Int
    let logger: Logger
    let onRebalance: KafkaConsumer.RebalanceHandler?
    /// Set once at init (before the poll thread starts).
    var subscribed = false
    private let queue: OpaquePointer

    init(handle: RDKafkaHandle, capacity: Int, logger: Logger, onRebalance: KafkaConsumer.RebalanceHandler?) {
        self.handle = handle
        self.capacity = capacity
        self.logger = logger
        self.onRebalance = onRebalance
        self.queue = rd_kafka_queue_get_consumer(handle.pointer)
    }

    deinit {
        dropQueues(nil)
        rd_kafka_queue_destroy(queue)
    }

    // MARK: poll thread

    /// Each assigned partition's own librdkafka queue (not forwarded to the consumer queue),
    /// drained round-robin. Touched on the poll thread only (and at init, before it starts).
    private var partitionQueues: [(tp: TopicPartition, queue: OpaquePointer)] = []
    private var nextQueue = 0
    /// Records taken from one partition per turn.
    static let turn = 256
    private var messageSlots = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: turn)

    /// One round of the poll thread: events (rebalances, logs, errors) from the consumer queue,
    /// then up to `turn` records from each partition queue in turn while the buffer has room.
    ///
    /// Why partition queues: through the one consumer queue librdkafka handed over whole
    /// partitions at a time (measured: 4 runs for 50,000 records of 4 partitions), so the lane
    /// owning that partition worked while the other idled behind the in-flight limit. Taking
    /// turns keeps every partition (and so every lane, and requests behind an activity flood)
    /// moving. Backpressure: while the buffer is full nothing is taken from the partition
    /// queues (events are still served), and librdkafka stops fetching once its pre-fetch
    /// queues reach `queued.min.messages` / `queued.max.messages.kbytes`. (Pausing instead
    /// threw the pre-fetched records away, and a resumed partition's next fetch came ~0.5 s
    /// later.)
    func step() {
        var took = 0
        if !partitionQueues.isEmpty && !isFull {
            let n = partitionQueues.count
            let first = nextQueue % n
            for i in 0..<n {
                let index = (first + i) % n
                let got = rd_kafka_consume_batch_queue(partitionQueues[index].queue, 0, &messageSlots, Self.turn)
                guard got > 0 else { continue }
                for j in 0..<got {
                    handle(message: messageSlots[j]!)
                    rd_kafka_message_destroy(messageSlots[j])
                }
                took += got
                nextQueue = index + 1  // the next turn goes to the partition after this one
                if isFull { break }
            }
        }
        // Block briefly only when there was nothing to take.
        if let ev = rd_kafka_queue_poll(queue, took > 0 ? 0 : 2) {
            handle(event: ev)
            rd_kafka_event_destroy(ev)
        }
    }

    private var isFull: Bool {
        state.withLock { s in s.finished == nil && s.buffer.count >= capacity }
    }

    /// Gives these partitions their own queues (before they are assigned, so no record of
    /// theirs goes through the consumer queue).
    func splitQueues(_ tps: [TopicPartition]) {
        for tp in tps where !partitionQueues.contains(where: { $0.tp == tp }) {
            guard let q = rd_kafka_queue_get_partition(handle.pointer, tp.topic, tp.partition) else { continue }
            rd_kafka_queue_forward(q, nil)
            partitionQueues.append((tp, q))
        }
        partitionQueues.sort { ($0.tp.topic, $0.tp.partition) < ($1.tp.topic, $1.tp.partition) }
    }

    /// Drops the queues of partitions no longer assigned (their undelivered records with them).
    func dropQueues(_ tps: Set<TopicPartition>?) {
        for (tp, q) in partitionQueues where tps?.contains(tp) ?? true { rd_kafka_queue_destroy(q) }
        partitionQueues.removeAll { tps?.contains($0.tp) ?? true }
        nextQueue = 0
    }

    private func handle(message msg: UnsafeMutablePointer<rd_kafka_message_t>) {
        if msg.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if msg.pointee.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                let topic = msg.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                deliver(.endOfPartition(TopicPartition(topic, msg.pointee.partition), nextOffset: msg.pointee.offset))
                return
            }
            let e = KafkaError.from(msg.pointee.err, context: "consume")
            logger.warning("consumer error: \(e.message)")
            state.withLock { $0.lastError = e }
            return
        }
        deliver(.record(Self.record(from: msg, topic: topicName(msg.pointee.rkt))))
    }

    /// The topics of recent records, so a record's topic shares its name's storage instead of
    /// allocating and validating a new string per record. Poll thread only.
    private var recentTopics: [String] = []

    private func topicName(_ rkt: OpaquePointer?) -> String {
        guard let rkt, let c = rd_kafka_topic_name(rkt) else { return "" }
        let len = strlen(c)
        for name in recentTopics where name.utf8.count == len {
            let same = name.utf8.withContiguousStorageIfAvailable { memcmp($0.baseAddress!, c, len) == 0 }
            if same == true { return name }
        }
        let name = String(cString: c)
        if recentTopics.count >= 8 { recentTopics.removeFirst() }
        recentTopics.append(name)
        return name
    }

    private func handle(event ev: OpaquePointer) {
        switch rd_kafka_event_type(ev) {
        case RD_KAFKA_EVENT_FETCH:
            // Partitions have their own queues; this is only for records that still came this way.
            while let msg = rd_kafka_event_message_next(ev) {
                handle(message: UnsafeMutablePointer(mutating: msg))
            }
        case RD_KAFKA_EVENT_REBALANCE:
            rebalance(ev)
        case RD_KAFKA_EVENT_LOG:
            RDKafkaHandle.forwardLog(ev, to: logger)
        case RD_KAFKA_EVENT_ERROR:
            let err = rd_kafka_event_error(ev)
            if err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                // Consumer errors (end of partition among them) come as ERROR events.
                if let tp = rd_kafka_event_topic_partition(ev) {
                    let topic = String(cString: tp.pointee.topic)
                    deliver(.endOfPartition(TopicPartition(topic, tp.pointee.partition), nextOffset: tp.pointee.offset))
                    rd_kafka_topic_partition_destroy(tp)
                }
                return
            }
            let e = KafkaError.from(err, context: "consumer")
            if rd_kafka_event_error_is_fatal(ev) != 0 {
                logger.critical("fatal consumer error: \(e.message)")
                finish(KafkaError(code: .fatal, message: e.message, rdKafkaCode: e.rdKafkaCode))
            } else {
                logger.warning("consumer error: \(String(cString: rd_kafka_event_error_string(ev)))")
                state.withLock { $0.lastError = e }
            }
        default:
            break
        }
    }

    private static func record(from msg: UnsafePointer<rd_kafka_message_t>, topic: String) -> KafkaRecord {
        let m = msg.pointee
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var i = 0
            var name: UnsafePointer<CChar>?
            var val: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(key: String(cString: name!),
                                           value: val.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
                i += 1
            }
        }
        var tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(msg, &tstype)
        return KafkaRecord(topic: topic, partition: m.partition, offset: m.offset, key: key, value: value,
                           headers: headers, timestamp: tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts)
    }

    private func deliver(_ event: ConsumerEvent) {
        let waiter = state.withLock { s -> CheckedContinuation<ConsumerEvent?, Error>? in
            guard s.finished == nil, s.assignment.contains(event.topicPartition) else { return nil }
            s.lastError = nil
            if let w = s.waiter { s.waiter = nil; return w }
            s.buffer.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    private func rebalance(_ ev: OpaquePointer) {
        let err = rd_kafka_event_error(ev)
        let list = rd_kafka_event_topic_partition_list(ev)!
        let tps = RDKafkaTopicPartitionList(borrowing: list).topicPartitions
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle.pointer)) == "COOPERATIVE"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            logger.info("partitions assigned: \(tps.map(\.description).sorted().joined(separator: ", "))")
            onRebalance?(.assigned(tps))
            state.withLock { $0.assignment.formUnion(tps) }
            splitQueues(tps)
            if cooperative {
                if let e = rd_kafka_incremental_assign(handle.pointer, list) {
                    logger.error("\(KafkaError.consuming(e, context: "incremental assign").message)")
                }
            } else {
                rd_kafka_assign(handle.pointer, list)
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            logger.info("partitions revoked: \(tps.map(\.description).sorted().joined(separator: ", "))")
            onRebalance?(.revoked(tps))
            state.withLock { $0.assignment.subtract(tps) }
            purge(Set(tps))
            if cooperative {
                if let e = rd_kafka_incremental_unassign(handle.pointer, list) {
                    logger.error("\(KafkaError.consuming(e, context: "incremental unassign").message)")
                }
            } else {
                rd_kafka_assign(handle.pointer, nil)
            }
            dropQueues(Set(tps))
        default:
            logger.error("rebalance failed: \(String(cString: rd_kafka_err2str(err)))")
            state.withLock { $0.assignment.removeAll() }
            rd_kafka_assign(handle.pointer, nil)
            dropQueues(nil)
        }
    }

    func setPaused(_ tps: [TopicPartition], _ paused: Bool) throws {
        guard !tps.isEmpty else { return }
        let list = RDKafkaTopicPartitionList(tps.map { ($0, nil) })
        let err = paused ? rd_kafka_pause_partitions(handle.pointer, list.pointer)
                         : rd_kafka_resume_partitions(handle.pointer, list.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(err, context: paused ? "pause" : "resume")
        }
    }

    /// Drops buffered records of these partitions.
    func purge(_ tps: Set<TopicPartition>) {
        state.withLock { s in s.buffer.removeAll { tps.contains($0.topicPartition) } }
    }

    /// Runs on the poll thread after `stop()`: leaves the group, serving the final revoke.
    func shutdown() {
        if subscribed {
            if let e = rd_kafka_consumer_close_queue(handle.pointer, queue) {
                logger.warning("\(KafkaError.consuming(e, context: "consumer close").message)")
            }
            let deadline = ContinuousClock.now + .seconds(15)
            while rd_kafka_consumer_closed(handle.pointer) == 0 && ContinuousClock.now < deadline {
                if let ev = rd_kafka_queue_poll(queue, 50) {
                    handle(event: ev)
                    rd_kafka_event_destroy(ev)
                }
            }
        } else {
            _ = rd_kafka_consumer_close(handle.pointer)
        }
        dropQueues(nil)
        finish(nil)
    }

    func finishRecords() { finish(nil) }

    private func finish(_ error: KafkaError?) {
        let waiter = state.withLock { s -> CheckedContinuation<ConsumerEvent?, Error>? in
            if s.finished == nil { s.finished = .some(error) }
            s.buffer.removeAll()
            defer { s.waiter = nil }
            return s.waiter
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    // MARK: consumer side

    /// The next record, skipping end-of-partition events.
    func next() async throws -> KafkaRecord? {
        while let event = try await nextEvent() {
            if case .record(let r) = event { return r }
        }
        return nil
    }

    func nextEvent() async throws -> ConsumerEvent? {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<ConsumerEvent?, Error>) in
            enum Outcome { case record(ConsumerEvent), end(KafkaError?), wait }
            let outcome: Outcome = state.withLock { s in
                if let r = s.buffer.popFirst() { return .record(r) }
                if let f = s.finished { return .end(f) }
                precondition(s.waiter == nil, "KafkaConsumer.records must be iterated from one task")
                s.waiter = cont
                return .wait
            }
            switch outcome {
            case .record(let r): cont.resume(returning: r)
            case .end(let e): if let e { cont.resume(throwing: e) } else { cont.resume(returning: nil) }
            case .wait: break
            }
        }
    }
}

/// What a consumer delivers: records and, with `enable.partition.eof=true`, the moments a
/// partition has been read to its end.
public enum ConsumerEvent: Sendable {
    case record(KafkaRecord)
    /// Everything before `nextOffset` has been delivered (judged from the fetch response, so
    /// it is right even on brokers whose ListOffsets answer is not, such as Tansu).
    case endOfPartition(TopicPartition, nextOffset: Int64)

    public var topicPartition: TopicPartition {
        switch self {
        case .record(let r): r.topicPartition
        case .endOfPartition(let tp, _): tp
        }
    }
}

/// Records and end-of-partition events of a `KafkaConsumer`, in partition order.
public struct KafkaEventSequence: AsyncSequence, Sendable {
    public typealias Element = ConsumerEvent
    let core: ConsumerCore

    public struct AsyncIterator: AsyncIteratorProtocol {
        let core: ConsumerCore
        public mutating func next() async throws -> ConsumerEvent? { try await core.nextEvent() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(core: core) }
}

/// The records of a `KafkaConsumer`, in partition order.
public struct KafkaRecordSequence: AsyncSequence, Sendable {
    public typealias Element = KafkaRecord
    let core: ConsumerCore

    public struct AsyncIterator: AsyncIteratorProtocol {
        let core: ConsumerCore
        public mutating func next() async throws -> KafkaRecord? { try await core.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(core: core) }
}
