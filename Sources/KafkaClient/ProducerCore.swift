import CRdKafka
import Logging
import Synchronization

/// The producer's shared state: pending delivery completions by opaque id, and the poll
/// logic that resolves them from delivery-report events.
final class ProducerCore: @unchecked Sendable {
    struct State {
        var nextID: UInt = 1
        var pending: [UInt: KafkaProducer.Completion] = [:]
        var closed = false
    }

    let handle: RDKafkaHandle
    let state = Mutex(State())
    let lastError = Mutex<KafkaError?>(nil)
    let logger: Logger
    private let queue: OpaquePointer

    init(handle: RDKafkaHandle, logger: Logger) {
        self.handle = handle
        self.logger = logger
        self.queue = rd_kafka_queue_get_main(handle.pointer)
    }

    deinit {
        rd_kafka_queue_destroy(queue)
    }

    /// Serves one event; false when none arrived within the timeout.
    @discardableResult
    func poll(timeoutMs: Int32) -> Bool {
        guard let ev = rd_kafka_queue_poll(queue, timeoutMs) else { return false }
        defer { rd_kafka_event_destroy(ev) }
        switch rd_kafka_event_type(ev) {
        case RD_KAFKA_EVENT_DR:
            var delivered = false
            while let msg = rd_kafka_event_message_next(ev) {
                let id = UInt(bitPattern: msg.pointee._private)
                guard let completion = state.withLock({ $0.pending.removeValue(forKey: id) }) else { continue }
                if msg.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    delivered = true
                    let topic = String(cString: rd_kafka_topic_name(msg.pointee.rkt))
                    completion(.success(DeliveryReport(topic: topic, partition: msg.pointee.partition,
                                                       offset: msg.pointee.offset)))
                } else {
                    let topic = msg.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
                    completion(.failure(KafkaError.from(msg.pointee.err, context: "delivery to \(topic)")))
                }
            }
            if delivered { lastError.withLock { $0 = nil } }
        case RD_KAFKA_EVENT_LOG:
            RDKafkaHandle.forwardLog(ev, to: logger)
        case RD_KAFKA_EVENT_ERROR:
            let text = String(cString: rd_kafka_event_error_string(ev))
            lastError.withLock { $0 = KafkaError.from(rd_kafka_event_error(ev), context: "producer") }
            if rd_kafka_event_error_is_fatal(ev) != 0 {
                logger.critical("fatal producer error: \(text)")
            } else {
                logger.warning("producer error: \(text)")
            }
        default:
            break
        }
        return true
    }
}
