import CRdKafka
import Logging

/// The one owner of an `rd_kafka_t`. Created from a configuration, destroyed in `deinit`.
/// librdkafka calls are thread-safe; the pointer never leaves this module.
final class RDKafkaHandle: @unchecked Sendable {
    enum Kind { case producer, consumer }

    let pointer: OpaquePointer
    let kind: Kind

    /// `events` is the rd_kafka event mask served on the main queue (no C callbacks are
    /// installed: delivery reports, logs, errors and rebalances all arrive as events that a
    /// Swift-owned thread polls).
    init(kind: Kind, configuration: KafkaConfiguration, events: Int32) throws {
        let conf = rd_kafka_conf_new()!
        var errbuf = [CChar](repeating: 0, count: 512)
        // Logs go to a queue (served as LOG events), never through a callback on librdkafka's threads.
        var props = configuration.properties
        props["log.queue"] = "true"
        for (key, value) in props.sorted(by: { $0.key < $1.key }) {
            let rc = rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count)
            if rc != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let detail = String(errorBuffer: errbuf)
                // Secrets stay out of logs; an unknown name may have come from the environment
                // (a variable meant for something else, e.g. FEEDRANK_KAFKA_PORT).
                let shown = key.contains("password") || key.contains("secret") ? "<redacted>" : value
                var message = "Kafka property \(key)=\(shown): \(detail)"
                if rc == RD_KAFKA_CONF_UNKNOWN {
                    message += " (given by --kafka, a config file's kafka.\(key), or \(KafkaConfiguration.environmentName(of: key)) in the environment)"
                }
                throw KafkaError(code: .configuration, message: message)
            }
        }
        rd_kafka_conf_set_events(conf, events)
        // On success rd_kafka_new takes ownership of conf; on failure we still own it.
        guard let rk = rd_kafka_new(kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
                                    conf, &errbuf, errbuf.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .configuration, message: "cannot create Kafka client: \(String(errorBuffer: errbuf))")
        }
        self.pointer = rk
        self.kind = kind
        // Forward logs to the main queue (for consumers: redirected to the consumer queue).
        rd_kafka_set_log_queue(rk, nil)
    }

    deinit {
        rd_kafka_destroy(pointer)
    }

    /// Partition counts of the cluster's topics (one metadata round trip).
    func topicPartitionCounts(timeoutMs: Int32) throws -> [String: Int] {
        var md: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(pointer, 1, nil, &md, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let meta = md else {
            throw KafkaError.from(err, context: "metadata request")
        }
        defer { rd_kafka_metadata_destroy(meta) }
        var out: [String: Int] = [:]
        for i in 0..<Int(meta.pointee.topic_cnt) {
            let t = meta.pointee.topics[i]
            if t.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                out[String(cString: t.topic)] = Int(t.partition_cnt)
            }
        }
        return out
    }

    /// The partition count of one topic; `.unknownTopic` if the broker doesn't have it.
    func partitionCount(topic: String, timeoutMs: Int32) throws -> Int {
        guard let n = try topicPartitionCounts(timeoutMs: timeoutMs)[topic] else {
            throw KafkaError(code: .unknownTopic, message: "topic \(topic) does not exist on the broker")
        }
        return n
    }

    /// Logs a LOG event through swift-log.
    static func forwardLog(_ event: OpaquePointer, to logger: Logger) {
        var fac: UnsafePointer<CChar>?
        var str: UnsafePointer<CChar>?
        var level: Int32 = 0
        guard rd_kafka_event_log(event, &fac, &str, &level) == 0 else { return }
        let facility = fac.map { String(cString: $0) } ?? "?"
        let text = str.map { String(cString: $0) } ?? ""
        let swiftLevel: Logger.Level
        switch level {
        case 0...3: swiftLevel = .error
        case 4: swiftLevel = .warning
        case 5, 6: swiftLevel = .info
        default: swiftLevel = .debug
        }
        logger.log(level: swiftLevel, "\(text)", metadata: ["rdkafka.facility": "\(facility)"])
    }

    /// The librdkafka version this binary runs with, e.g. "2.8.0".
    static var versionString: String { String(cString: rd_kafka_version_str()) }
}

/// librdkafka's runtime version (the statically linked one).
public enum KafkaLibrary {
    public static var version: String { RDKafkaHandle.versionString }

    /// Numeric (major, minor, patch) of `version`.
    public static var versionComponents: (Int, Int, Int) {
        let v = Int(rd_kafka_version())
        return ((v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff)
    }
}
