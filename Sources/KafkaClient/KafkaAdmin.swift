import CRdKafka
import Logging

/// A topic to create.
public struct TopicSpec: Sendable, Equatable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int
    public var config: [String: String]

    public init(name: String, partitions: Int, replicationFactor: Int = 1, config: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.config = config
    }
}

/// What the broker says a topic is.
public struct TopicDescription: Sendable, Equatable {
    public var name: String
    public var partitions: Int
    /// Non-default config entries, or nil when the broker doesn't answer DescribeConfigs.
    public var config: [String: String]?
}

/// Kafka admin operations (create and describe topics). Blocking calls: use from a
/// command-line tool or offload from async code.
public final class KafkaAdmin: Sendable {
    private let handle: RDKafkaHandle
    private let logger: Logger

    public init(configuration: KafkaConfiguration, logger: Logger = Logger(label: "feedrank.kafka.admin")) throws {
        self.handle = try RDKafkaHandle(kind: .producer, configuration: configuration,
                                        events: RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR)
        self.logger = logger
    }

    /// Creates topics; the result per topic is nil on success or the error (an existing
    /// topic gives code `.other(36)` TOPIC_ALREADY_EXISTS — see `isAlreadyExists`).
    public func createTopics(_ specs: [TopicSpec], timeout: Duration = .seconds(30)) throws -> [String: KafkaError?] {
        guard !specs.isEmpty else { return [:] }
        var errbuf = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
        for spec in specs {
            guard let nt = rd_kafka_NewTopic_new(spec.name, Int32(spec.partitions), Int32(spec.replicationFactor),
                                                 &errbuf, errbuf.count) else {
                throw KafkaError(code: .configuration, message: "topic \(spec.name): \(String(errorBuffer: errbuf))")
            }
            newTopics.append(nt)
            for (k, v) in spec.config.sorted(by: { $0.key < $1.key }) {
                let err = rd_kafka_NewTopic_set_config(nt, k, v)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError.from(err, context: "topic \(spec.name) config \(k)=\(v)")
                }
            }
        }
        return try withAdminCall(op: RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout: timeout,
                                 start: { opts, q in rd_kafka_CreateTopics(handle.pointer, &newTopics, newTopics.count, opts, q) },
                                 result: { ev in
            var cnt = 0
            guard let res = rd_kafka_event_CreateTopics_result(ev),
                  let topics = rd_kafka_CreateTopics_result_topics(res, &cnt) else {
                throw KafkaError(code: .other(-1), message: "CreateTopics: no result")
            }
            var out: [String: KafkaError?] = [:]
            for i in 0..<cnt {
                let t = topics[i]
                let name = String(cString: rd_kafka_topic_result_name(t))
                let err = rd_kafka_topic_result_error(t)
                if err == RD_KAFKA_RESP_ERR_NO_ERROR { out[name] = .some(nil); continue }
                let text = rd_kafka_topic_result_error_string(t).map { String(cString: $0) } ?? ""
                var e = KafkaError.from(err, context: "create topic \(name)")
                if !text.isEmpty { e = KafkaError(code: e.code, message: "create topic \(name): \(text)", rdKafkaCode: e.rdKafkaCode) }
                out[name] = e
            }
            return out
        })
    }

    /// Partition counts (and, where the broker supports it, non-default configs) of topics.
    /// Topics the broker doesn't have are absent from the result.
    public func describeTopics(_ names: [String], timeout: Duration = .seconds(30)) throws -> [String: TopicDescription] {
        let counts = try handle.topicPartitionCounts(timeoutMs: timeout.milliseconds)
        var out: [String: TopicDescription] = [:]
        for name in names { if let n = counts[name] { out[name] = TopicDescription(name: name, partitions: n, config: nil) } }
        let present = names.filter { out[$0] != nil }
        guard !present.isEmpty else { return out }
        do {
            let configs = try describeConfigs(present, timeout: timeout)
            for (name, cfg) in configs { out[name]?.config = cfg }
        } catch {
            logger.info("DescribeConfigs unavailable: \(error)")
        }
        return out
    }

    private func describeConfigs(_ names: [String], timeout: Duration) throws -> [String: [String: String]] {
        var resources: [OpaquePointer?] = names.map { rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, $0) }
        defer { resources.forEach { rd_kafka_ConfigResource_destroy($0) } }
        return try withAdminCall(op: RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout: timeout,
                                 start: { opts, q in rd_kafka_DescribeConfigs(handle.pointer, &resources, resources.count, opts, q) },
                                 result: { ev in
            var cnt = 0
            guard let res = rd_kafka_event_DescribeConfigs_result(ev),
                  let rs = rd_kafka_DescribeConfigs_result_resources(res, &cnt) else {
                throw KafkaError(code: .other(-1), message: "DescribeConfigs: no result")
            }
            var out: [String: [String: String]] = [:]
            for i in 0..<cnt {
                let r = rs[i]
                let name = String(cString: rd_kafka_ConfigResource_name(r))
                if rd_kafka_ConfigResource_error(r) != RD_KAFKA_RESP_ERR_NO_ERROR { continue }
                var n = 0
                guard let entries = rd_kafka_ConfigResource_configs(r, &n) else { continue }
                var cfg: [String: String] = [:]
                for j in 0..<n {
                    let e = entries[j]
                    if rd_kafka_ConfigEntry_is_default(e) != 0 { continue }
                    if let v = rd_kafka_ConfigEntry_value(e) {
                        cfg[String(cString: rd_kafka_ConfigEntry_name(e))] = String(cString: v)
                    }
                }
                out[name] = cfg
            }
            return out
        })
    }

    /// Runs one admin request on a private result queue and converts its result event.
    private func withAdminCall<T>(op: rd_kafka_admin_op_t, timeout: Duration,
                                  start: (OpaquePointer?, OpaquePointer?) -> Void,
                                  result: (OpaquePointer) throws -> T) throws -> T {
        let queue = rd_kafka_queue_new(handle.pointer)
        defer { rd_kafka_queue_destroy(queue) }
        let opts = rd_kafka_AdminOptions_new(handle.pointer, op)
        defer { rd_kafka_AdminOptions_destroy(opts) }
        var errbuf = [CChar](repeating: 0, count: 256)
        _ = rd_kafka_AdminOptions_set_request_timeout(opts, timeout.milliseconds, &errbuf, errbuf.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(opts, timeout.milliseconds, &errbuf, errbuf.count)
        start(opts, queue)
        guard let ev = rd_kafka_queue_poll(queue, timeout.milliseconds + 1000) else {
            throw KafkaError(code: .timedOut, message: "admin request timed out", isRetryable: true)
        }
        defer { rd_kafka_event_destroy(ev) }
        let err = rd_kafka_event_error(ev)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(err, context: "admin request")
        }
        drainLogs()
        return try result(ev)
    }

    private func drainLogs() {
        let main = rd_kafka_queue_get_main(handle.pointer)
        defer { rd_kafka_queue_destroy(main) }
        while let ev = rd_kafka_queue_poll(main, 0) {
            if rd_kafka_event_type(ev) == RD_KAFKA_EVENT_LOG { RDKafkaHandle.forwardLog(ev, to: logger) }
            rd_kafka_event_destroy(ev)
        }
    }
}

extension KafkaError {
    /// A CreateTopics answer meaning "the topic is there already".
    public var isAlreadyExists: Bool { rdKafkaCode == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue }
}
