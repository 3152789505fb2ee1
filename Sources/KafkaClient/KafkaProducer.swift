import CRdKafka
import Dispatch
import Logging
import Synchronization

/// A Kafka producer. `send` completes when the broker acknowledged the record (the
/// delivery report), so callers can commit their inputs only after their outputs are safe.
///
/// Delivery reports, logs and errors are librdkafka *events* polled by a Swift-owned thread;
/// no C callback ever runs Swift code on librdkafka's threads.
public final class KafkaProducer: Sendable {
    public typealias Completion = @Sendable (Result<DeliveryReport, KafkaError>) -> Void

    private let core: ProducerCore
    private var handle: RDKafkaHandle { core.handle }
    private let poller: PollThread

    /// FeedRank's producer defaults; `configuration` wins over them.
    public static let defaults: [String: String] = [
        "partitioner": "murmur2_random",   // same partition as the Java client for a key
        "enable.idempotence": "true",      // no duplicates or reordering from retries
        // Fewer, fuller produce requests: less work for the producer's broker thread (poll,
        // send, compression per batch) and for the broker. 5 (librdkafka's default) against 2
        // (bench-worker, 2026-11-27): ranking responses/s +15-18 %, paced p50/p99 +3 ms; 10
        // against 5 (2026-11-28, 400,000-event floods, 7 interleaved pairs): median 98,600 vs
        // 89,900 events/s, the broker's CPU per flood ~12 % lower. Kafka Streams uses 100.
        "linger.ms": "10",
        // Responses (~4 KB of JSON) and user states (~2.4 KB) shrink several-fold, so the broker
        // (which keeps producer compression: topics/*.json) stores and serves a fraction of the
        // bytes. Against none (bench-worker, activity flood of 400,000 events, 2026-11-27,
        // interleaved, 13 / 14 runs): median 86,800 vs 81,500 events/s; zstd and snappy no better.
        "compression.type": "lz4",
        "message.max.bytes": "1000000",
    ]

    public init(configuration: KafkaConfiguration, logger: Logger = Logger(label: "feedrank.kafka.producer")) throws {
        let conf = KafkaConfiguration(Self.defaults).merging(configuration.properties)
        let handle = try RDKafkaHandle(kind: .producer, configuration: conf,
                                       events: RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR)
        let core = ProducerCore(handle: handle, logger: logger)
        self.core = core
        // The poll thread holds the core only, never `self`, so deinit can stop it.
        self.poller = PollThread(name: "feedrank-kafka-producer", step: { core.poll(timeoutMs: 50) },
                                 drain: { while core.poll(timeoutMs: 0) {} })
    }

    deinit {
        close(timeout: .seconds(10))
    }

    /// The last client-level error seen (nil once a delivery succeeds again).
    public var lastClientError: KafkaError? { core.lastError.withLock { $0 } }

    /// Hands a record to librdkafka; `completion` runs on the producer's poll thread when the
    /// broker acknowledges it or delivery fails. Throws at once for local errors: `.queueFull`
    /// (retryable), `.messageTooLarge`, `.unknownTopic`, `.closed`.
    public func enqueue(_ record: OutgoingRecord, completion: @escaping Completion) throws {
        let id: UInt = try core.state.withLock { s in
            guard !s.closed else { throw KafkaError.closedClient }
            let id = s.nextID
            s.nextID &+= 1
            if s.nextID == 0 { s.nextID = 1 }
            s.pending[id] = completion
            return id
        }
        let error = produce(record, opaque: UnsafeMutableRawPointer(bitPattern: id))
        if let error {
            core.state.withLock { _ = $0.pending.removeValue(forKey: id) }
            throw error
        }
    }

    /// `enqueue`, waiting out a full local queue (it drains as the broker acknowledges) instead
    /// of throwing `.queueFull`; other errors are thrown as by `enqueue`.
    public func enqueueWaiting(_ record: OutgoingRecord, completion: @escaping Completion) async throws {
        var backoff: UInt64 = 100_000  // 0.1 ms, doubling to 1 ms
        while true {
            do {
                try enqueue(record, completion: completion)
                return
            } catch let e as KafkaError where e.code == .queueFull {
                try await Task.sleep(nanoseconds: backoff)
                backoff = min(backoff * 2, 1_000_000)
            }
        }
    }

    /// Sends a record and waits for its delivery report. A full local queue is waited out.
    public func send(_ record: OutgoingRecord) async throws -> DeliveryReport {
        var backoff: UInt64 = 200_000  // 0.2 ms
        while true {
            do {
                return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<DeliveryReport, Error>) in
                    do {
                        try enqueue(record) { result in cont.resume(with: result.mapError { $0 as Error }) }
                    } catch {
                        cont.resume(throwing: error)
                    }
                }
            } catch let e as KafkaError where e.code == .queueFull {
                try await Task.sleep(nanoseconds: backoff)
                backoff = min(backoff * 2, 50_000_000)
            }
        }
    }

    /// Number of records handed over but not yet acknowledged.
    public var inFlight: Int { core.state.withLock { $0.pending.count } }

    private func produce(_ r: OutgoingRecord, opaque: UnsafeMutableRawPointer?) -> KafkaError? {
        var headers: OpaquePointer? = nil
        if !r.headers.isEmpty {
            headers = rd_kafka_headers_new(r.headers.count)
            for h in r.headers {
                if let v = h.value {
                    v.withUnsafeBytes { b in _ = rd_kafka_header_add(headers, h.key, -1, b.baseAddress, b.count) }
                } else {
                    _ = rd_kafka_header_add(headers, h.key, -1, nil, 0)
                }
            }
        }
        let err: OpaquePointer? = r.topic.withCString { topic in
            r.value.withUnsafeBytes { value in
                withOptionalBytes(r.key) { key in
                    var vus = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 8)
                    var n = 0
                    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC; vus[n].u.cstr = topic; n += 1
                    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION; vus[n].u.i32 = r.partition ?? RD_KAFKA_PARTITION_UA; n += 1
                    vus[n].vtype = RD_KAFKA_VTYPE_VALUE
                    vus[n].u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                    vus[n].u.mem.size = value.count; n += 1
                    if let key {
                        vus[n].vtype = RD_KAFKA_VTYPE_KEY
                        vus[n].u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
                        vus[n].u.mem.size = key.count; n += 1
                    }
                    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS; vus[n].u.i = RD_KAFKA_MSG_F_COPY; n += 1
                    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE; vus[n].u.ptr = opaque; n += 1
                    if let headers { vus[n].vtype = RD_KAFKA_VTYPE_HEADERS; vus[n].u.headers = headers; n += 1 }
                    if let ts = r.timestamp { vus[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP; vus[n].u.i64 = ts; n += 1 }
                    return rd_kafka_produceva(handle.pointer, vus, n)
                }
            }
        }
        guard let err else { return nil }  // librdkafka owns the headers now
        if let headers { rd_kafka_headers_destroy(headers) }
        let e = KafkaError.consuming(err, context: "produce to \(r.topic)")
        if e.code == .messageTooLarge {
            return KafkaError(code: .messageTooLarge,
                              message: "record of \(r.value.count) bytes for \(r.topic) exceeds the producer's message.max.bytes",
                              rdKafkaCode: e.rdKafkaCode)
        }
        return e
    }

    /// Waits until every handed-over record is acknowledged or failed (blocking; use from a
    /// dedicated thread or at shutdown).
    public func flush(timeout: Duration) throws {
        let err = rd_kafka_flush(handle.pointer, timeout.milliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(err, context: "flush (\(inFlight) records unacknowledged)")
        }
    }

    /// Async flush that doesn't block the cooperative pool.
    public func flush(timeout: Duration) async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            DispatchQueue.global().async {
                do { try self.flush(timeout: timeout); cont.resume() } catch { cont.resume(throwing: error) }
            }
        }
    }

    /// Partition count of `topic` (a metadata round trip).
    public func partitionCount(topic: String, timeout: Duration = .seconds(10)) throws -> Int {
        try handle.partitionCount(topic: topic, timeoutMs: timeout.milliseconds)
    }

    /// Flushes, stops the poll thread and fails whatever is still pending. Idempotent.
    public func close(timeout: Duration = .seconds(10)) {
        let wasClosed = core.state.withLock { s -> Bool in defer { s.closed = true }; return s.closed }
        if wasClosed { return }
        _ = rd_kafka_flush(handle.pointer, timeout.milliseconds)
        poller.stop()
        let left = core.state.withLock { s -> [Completion] in
            defer { s.pending.removeAll() }
            return Array(s.pending.values)
        }
        for c in left { c(.failure(KafkaError(code: .closed, message: "producer closed before delivery"))) }
    }
}

func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

extension Duration {
    var milliseconds: Int32 {
        let c = components
        return Int32(clamping: c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
    }
}
