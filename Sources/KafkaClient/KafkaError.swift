import CRdKafka

/// The one error type of the Kafka adapter: a code, a message naming the culprit, and
/// whether retrying the same operation can help.
public struct KafkaError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        /// A configuration property was rejected by librdkafka.
        case configuration
        /// The broker could not be reached or the connection broke.
        case transport
        /// The topic or partition does not exist.
        case unknownTopic
        /// The record is larger than the client's or broker's limit.
        case messageTooLarge
        /// The operation did not finish in time.
        case timedOut
        /// The client's local queue is full; retry after the producer drains.
        case queueFull
        /// The client has been closed.
        case closed
        /// librdkafka reported an unrecoverable error; the client must be recreated.
        case fatal
        /// Any other librdkafka error, by its `rd_kafka_resp_err_t` code.
        case other(Int32)
    }

    public let code: Code
    public let message: String
    public let isRetryable: Bool
    /// The raw librdkafka error code, when one exists.
    public let rdKafkaCode: Int32?

    public init(code: Code, message: String, isRetryable: Bool = false, rdKafkaCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.isRetryable = isRetryable
        self.rdKafkaCode = rdKafkaCode
    }

    public var description: String { "Kafka: \(message)" }

    /// Maps a librdkafka response code, with context naming what was attempted.
    static func from(_ err: rd_kafka_resp_err_t, context: String) -> KafkaError {
        let text = String(cString: rd_kafka_err2str(err))
        let raw = err.rawValue
        let code: Code
        var retryable = false
        switch err {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
             RD_KAFKA_RESP_ERR__RESOLVE, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
            code = .transport; retryable = true
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
             RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            code = .unknownTopic
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
            code = .messageTooLarge
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
             RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
            code = .timedOut; retryable = true
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            code = .queueFull; retryable = true
        case RD_KAFKA_RESP_ERR__FATAL:
            code = .fatal
        default:
            code = .other(raw)
            retryable = [RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                         RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                         RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS].contains(err)
        }
        return KafkaError(code: code, message: "\(context): \(text)", isRetryable: retryable, rdKafkaCode: raw)
    }

    /// Takes ownership of an `rd_kafka_error_t` (destroys it).
    static func consuming(_ error: OpaquePointer, context: String) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        var e = from(rd_kafka_error_code(error), context: context)
        if let s = rd_kafka_error_string(error) {
            e = KafkaError(code: e.code, message: "\(context): \(String(cString: s))",
                           isRetryable: rd_kafka_error_is_retriable(error) != 0 || e.isRetryable,
                           rdKafkaCode: e.rdKafkaCode)
        }
        if rd_kafka_error_is_fatal(error) != 0 {
            e = KafkaError(code: .fatal, message: e.message, isRetryable: false, rdKafkaCode: e.rdKafkaCode)
        }
        return e
    }

    static let closedClient = KafkaError(code: .closed, message: "the client is closed")
}

extension String {
    /// The NUL-terminated text librdkafka wrote into an error buffer (`String(cString:)` on an
    /// array is deprecated: it cannot see the array's end).
    init(errorBuffer buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
