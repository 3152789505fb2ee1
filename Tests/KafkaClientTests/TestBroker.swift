import Foundation
import KafkaClient
import Testing

/// The local broker started by `scripts/services.sh up` (scripts/test.sh exports its address).
enum TestBroker {
    static var brokers: String {
        get throws {
            guard let b = ProcessInfo.processInfo.environment["FEEDRANK_TEST_BROKERS"], !b.isEmpty else {
                throw TestSetupError("FEEDRANK_TEST_BROKERS is not set: run the tests through scripts/test.sh (it starts the broker)")
            }
            return b
        }
    }

    /// Producer/admin settings for the local broker.
    static func config(_ extra: [String: String] = [:]) throws -> KafkaConfiguration {
        KafkaConfiguration(brokers: try brokers, ["topic.metadata.refresh.interval.ms": "1000"]).merging(extra)
    }

    /// Consumer settings: fast group joins and short fetch waits on Tansu (contract section 7).
    static func consumerConfig(_ extra: [String: String] = [:]) throws -> KafkaConfiguration {
        try config([
            "fetch.wait.max.ms": "10",
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "500",
        ]).merging(extra)
    }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))-\(Int(Date().timeIntervalSince1970 * 1000) % 1_000_000)"
    }

    /// Creates a topic with `partitions` partitions and waits until metadata shows it.
    static func createTopic(_ name: String, partitions: Int) throws {
        let admin = try KafkaAdmin(configuration: config())
        let result = try admin.createTopics([TopicSpec(name: name, partitions: partitions)])
        if let e = result[name] ?? nil, !e.isAlreadyExists { throw e }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if try admin.describeTopics([name])[name]?.partitions == partitions { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw TestSetupError("topic \(name) did not appear with \(partitions) partitions")
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Collects records from a sequence until `count` arrived or the deadline passed.
func collect(_ consumer: KafkaConsumer, count: Int, within seconds: Double) async throws -> [KafkaRecord] {
    try await withThrowingTaskGroup(of: [KafkaRecord]?.self) { group in
        group.addTask {
            var out: [KafkaRecord] = []
            for try await r in consumer.records {
                out.append(r)
                if out.count >= count { break }
            }
            return out
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let records = first else {
            // Unblock the reader so the group can finish.
            await consumer.close()
            _ = try await group.next()
            throw TestSetupError("timed out after \(seconds)s waiting for \(count) records")
        }
        return records
    }
}
