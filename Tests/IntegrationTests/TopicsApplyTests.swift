import Foundation
import KafkaClient
import Testing
@testable import FeedRankCLI

/// `feedrank topics apply` against the local broker (scripts/services.sh up; FEEDRANK_TEST_BROKERS).
/// Every test uses its own topic-name prefix, so runs and tests never collide.
@Suite(.serialized)
struct TopicsApplyTests {
    static var brokers: String {
        get throws {
            guard let b = ProcessInfo.processInfo.environment["FEEDRANK_TEST_BROKERS"], !b.isEmpty else {
                throw TopicsTestSetupError("FEEDRANK_TEST_BROKERS is not set: run the tests through scripts/test.sh (it starts the broker)")
            }
            return b
        }
    }

    static func uniquePrefix(_ tag: String) -> String {
        "it-\(tag)-\(UInt32.random(in: 0...UInt32.max))-\(Int(Date().timeIntervalSince1970 * 1000) % 1_000_000)."
    }

    /// `feedrank topics apply` with these flags (the broker and the repository's topics/ added).
    static func run(_ flags: [String]) throws -> TopicsReport {
        let cmd = try TopicsApplyCommand.parse(["--dir", TopicDefinitionsTests.repoTopics, "--brokers", try brokers,
                                                "--timeout", "20"] + flags)
        return try cmd.execute(environment: [:])
    }

    static func admin() throws -> KafkaAdmin {
        try KafkaAdmin(configuration: KafkaConfiguration(brokers: try brokers, ["topic.metadata.refresh.interval.ms": "1000"]))
    }

    static let contractTopics = ["user-activity", "ranking-requests", "ranking-responses", "ranking-dlq", "user-state"]

    @Test func createsEveryDeclaredTopicThenASecondRunReportsNoChanges() throws {
        let prefix = Self.uniquePrefix("apply")
        let first = try Self.run(["--prefix", prefix, "--replication-factor", "1"])
        #expect(first.created == 5, "\(first.lines)")
        #expect(first.hasChanges)

        let names = Self.contractTopics.map { prefix + $0 }
        let onBroker = try Self.admin().describeTopics(names)
        let defs = try TopicDefinitions.load(directory: TopicDefinitionsTests.repoTopics)
        for d in defs {
            #expect(onBroker[prefix + d.name]?.partitions == d.partitions, "\(d.name) on the broker")
        }

        let second = try Self.run(["--prefix", prefix, "--replication-factor", "1"])
        #expect(second.upToDate == 5, "\(second.lines)")
        #expect(!second.hasChanges)
        #expect(second.drifted == 0 && second.failed == 0)
        #expect(second.summary == "no changes: 5 topics up to date")
    }

    @Test func dryRunReportsWhatWouldBeCreatedAndCreatesNothing() throws {
        let prefix = Self.uniquePrefix("dry")
        let report = try Self.run(["--prefix", prefix, "--replication-factor", "1", "--dry-run"])
        #expect(report.wouldCreate == 5)
        #expect(report.lines.contains { $0.contains("would create") && $0.contains(prefix + "user-state") })
        let onBroker = try Self.admin().describeTopics(Self.contractTopics.map { prefix + $0 })
        #expect(onBroker.isEmpty, "a dry run created \(onBroker.keys.sorted())")
    }

    @Test func existingTopicWithOtherPartitionCountIsReportedAsDriftAndLeftAlone() throws {
        let prefix = Self.uniquePrefix("drift")
        let admin = try Self.admin()
        let name = prefix + "user-activity"
        let result = try admin.createTopics([TopicSpec(name: name, partitions: 2)])
        if let e = result[name] ?? nil { throw e }

        let report = try Self.run(["--prefix", prefix, "--replication-factor", "1"])
        let outcome = try #require(report.outcomes.first { $0.name == name })
        guard case .drifted(let diffs) = outcome.state else {
            Issue.record("expected drift for \(name), got \(outcome.state)")
            return
        }
        #expect(diffs.first?.hasPrefix("partitions: 2 on the broker, 12 declared") == true, "\(diffs)")
        #expect(report.created == 4)
        #expect(try admin.describeTopics([name])[name]?.partitions == 2, "apply must not alter an existing topic")

        // Drift alone is reported, not fatal; --fail-on-drift turns it into exit status 1.
        let plain = try TopicsApplyCommand.parse(["--brokers", try Self.brokers])
        #expect(throws: Never.self) { try plain.check(report) }
        let strict = try TopicsApplyCommand.parse(["--brokers", try Self.brokers, "--fail-on-drift"])
        do {
            try strict.check(report)
            Issue.record("--fail-on-drift accepted a drifted topic")
        } catch {
            #expect(error.exitStatus == 1 && error.message.contains("--fail-on-drift"))
        }
    }

    @Test func unreachableBrokerIsARuntimeFailure() throws {
        let cmd = try TopicsApplyCommand.parse(["--dir", TopicDefinitionsTests.repoTopics, "--brokers", "127.0.0.1:1",
                                                "--timeout", "2", "--prefix", Self.uniquePrefix("down")])
        do {
            _ = try cmd.execute(environment: [:])
            Issue.record("apply against a closed port succeeded")
        } catch {
            #expect(error.code == .runtime && error.exitStatus == 1)
            #expect(error.message.contains("127.0.0.1:1"), "\(error.message)")
        }
    }
}

struct TopicsTestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
