import Foundation
import KafkaClient
import Testing
@testable import FeedRankCLI

/// topics/*.json declarations and the drift rules of `feedrank topics apply` (no broker needed).
struct TopicDefinitionsTests {
    static let repoTopics = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("topics").path

    /// A temporary topics directory holding the given files.
    static func directory(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("feedrank-topics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
        return dir.path
    }

    static func topic(_ name: String, partitions: String = "4", group: String? = nil, extra: String = "") -> String {
        let g = group.map { ", \"co_partition_group\": \"\($0)\"" } ?? ""
        return "{\"name\": \"\(name)\", \"partitions\": \(partitions), \"replication_factor\": 3\(g), \"config\": {\"cleanup.policy\": \"delete\", \"min.insync.replicas\": \"2\"}\(extra)}"
    }

    /// The TopicsError the body throws (nil when it succeeds; any other error is a test failure).
    func usageError(_ body: () throws -> Void) -> TopicsError? {
        do { try body(); return nil } catch let e as TopicsError { return e } catch {
            Issue.record("expected a TopicsError, got \(error)")
            return nil
        }
    }

    @Test func repositoryTopicsDeclareTheContractTopicsWithCoPartitioning() throws {
        let defs = try TopicDefinitions.load(directory: Self.repoTopics)
        #expect(Set(defs.map(\.name)) == ["user-activity", "ranking-requests", "ranking-responses", "ranking-dlq", "user-state"])
        let users = defs.filter { $0.coPartitionGroup == "users" }
        #expect(Set(users.map(\.name)) == ["user-activity", "ranking-requests", "user-state"])
        #expect(Set(users.map(\.partitions)).count == 1)
        #expect(defs.first { $0.name == "user-state" }?.config["cleanup.policy"] == "compact")
        #expect(defs.allSatisfy { $0.config["max.message.bytes"] != nil })
    }

    @Test func unknownFieldIsABadDeclarationNamingFileAndField() throws {
        let dir = try Self.directory(["a.json": Self.topic("a", extra: ", \"partition\": 3")])
        let e = usageError { _ = try TopicDefinitions.load(directory: dir) }
        #expect(e?.code == .usage)
        #expect(e?.message.contains("a.json") == true && e?.message.contains("'partition'") == true)
        #expect(e?.exitStatus == 2)
    }

    @Test func partitionsAsAStringIsRejectedNamingTheField() throws {
        let dir = try Self.directory(["a.json": Self.topic("a", partitions: "\"12\"")])
        let e = usageError { _ = try TopicDefinitions.load(directory: dir) }
        #expect(e?.message.contains("field 'partitions'") == true, "\(String(describing: e))")
    }

    @Test func zeroPartitionsIsRejected() throws {
        let dir = try Self.directory(["a.json": Self.topic("a", partitions: "0")])
        let e = usageError { _ = try TopicDefinitions.load(directory: dir) }
        #expect(e?.message.contains("partitions") == true && e?.message.contains("got 0") == true)
    }

    @Test func illegalTopicNameIsRejected() throws {
        let dir = try Self.directory(["a.json": Self.topic("user activity")])
        let e = usageError { _ = try TopicDefinitions.load(directory: dir) }
        #expect(e?.message.contains("not a legal Kafka topic name") == true)
    }

    @Test func coPartitionedTopicsWithDifferentCountsAreRejected() throws {
        let dir = try Self.directory(["a.json": Self.topic("a", partitions: "12", group: "users"),
                                      "b.json": Self.topic("b", partitions: "6", group: "users"),
                                      "c.json": Self.topic("c", partitions: "3")])
        let e = usageError { _ = try TopicDefinitions.load(directory: dir) }
        #expect(e?.message.contains("co-partition group 'users'") == true)
        #expect(e?.message.contains("a=12") == true && e?.message.contains("b=6") == true)
    }

    @Test func theSameTopicInTwoFilesIsRejected() throws {
        let dir = try Self.directory(["a.json": Self.topic("a"), "b.json": Self.topic("a")])
        let e = usageError { _ = try TopicDefinitions.load(directory: dir) }
        #expect(e?.message.contains("also declared") == true)
    }

    @Test func schemaFilesAreNotTopics() throws {
        let dir = try Self.directory(["a.json": Self.topic("a"), "topic.schema.json": "{\"type\": \"object\"}"])
        #expect(try TopicDefinitions.load(directory: dir).map(\.name) == ["a"])
    }

    @Test func emptyOrMissingDirectoryIsABadFlag() throws {
        let empty = try Self.directory([:])
        #expect(usageError { _ = try TopicDefinitions.load(directory: empty) }?.message.contains("no topic files") == true)
        #expect(usageError { _ = try TopicDefinitions.load(directory: empty + "/nope") }?.code == .usage)
    }

    @Test func prefixAndReplicationOverrideAdaptEveryTopicAndCapMinInsyncReplicas() throws {
        let defs = [TopicDefinition(name: "user-activity", partitions: 12, replicationFactor: 3,
                                    config: ["min.insync.replicas": "2", "retention.ms": "1000"])]
        let dev = try TopicDefinition.adapted(defs, prefix: "t-1.", replicationFactor: 1)
        #expect(dev[0].name == "t-1.user-activity")
        #expect(dev[0].replicationFactor == 1)
        #expect(dev[0].config == ["min.insync.replicas": "1", "retention.ms": "1000"])
        let prod = try TopicDefinition.adapted(defs, prefix: "", replicationFactor: nil)
        #expect(prod == defs)
        #expect(usageError { _ = try TopicDefinition.adapted(defs, prefix: "bad prefix/", replicationFactor: nil) }?.code == .usage)
        #expect(usageError { _ = try TopicDefinition.adapted(defs, prefix: "", replicationFactor: 0) }?.code == .usage)
    }

    @Test func driftListsPartitionAndConfigDifferences() {
        let d = TopicDefinition(name: "t", partitions: 12, replicationFactor: 3,
                                config: ["cleanup.policy": "compact", "retention.ms": "1000"])
        let same = TopicsApplier.drift(of: d, partitions: 12, configs: ["cleanup.policy": "compact", "retention.ms": "1000"])
        #expect(same.diffs.isEmpty && same.configsCompared)
        let (diffs, compared) = TopicsApplier.drift(of: d, partitions: 6, configs: ["cleanup.policy": "delete"])
        #expect(compared)
        #expect(diffs.count == 3)
        #expect(diffs[0].hasPrefix("partitions: 6 on the broker, 12 declared"))
        #expect(diffs[1] == "config cleanup.policy: delete on the broker, compact declared")
        #expect(diffs[2].hasPrefix("config retention.ms: no override on the broker"))
        #expect(TopicsApplier.drift(of: d, partitions: 24, configs: nil).diffs[0].contains("cannot remove partitions"))
    }

    @Test func configsAreNotComparedWhenTheBrokerReportsNoOverridesAtAll() {
        let d = TopicDefinition(name: "t", partitions: 12, replicationFactor: 3, config: ["cleanup.policy": "compact"])
        // No DescribeConfigs answer, or an empty override map (Tansu): partitions only.
        for configs in [nil, [:]] as [[String: String]?] {
            let r = TopicsApplier.drift(of: d, partitions: 12, configs: configs)
            #expect(r.diffs.isEmpty && !r.configsCompared)
            #expect(TopicsApplier.drift(of: d, partitions: 3, configs: configs).diffs.count == 1)
        }
        // Nothing declared: nothing to compare, nothing missed.
        let bare = TopicDefinition(name: "t", partitions: 1, replicationFactor: 1)
        #expect(TopicsApplier.drift(of: bare, partitions: 1, configs: [:]).configsCompared)
    }

    @Test func reportSaysNoChangesOnlyWhenEverythingIsUpToDate() {
        let same = TopicsReport(outcomes: [TopicOutcome(name: "a", state: .upToDate), TopicOutcome(name: "b", state: .upToDate)])
        #expect(same.summary == "no changes: 2 topics up to date")
        #expect(!same.hasChanges)
        let mixed = TopicsReport(outcomes: [TopicOutcome(name: "a", state: .created, detail: "1 partitions"),
                                            TopicOutcome(name: "b", state: .drifted(["partitions: 1 on the broker, 2 declared"]))],
                                 configsNotCompared: ["b"])
        #expect(mixed.summary == "1 created, 1 drifted (not changed: see above)")
        #expect(mixed.lines.contains { $0.contains("DRIFT") && $0.contains("partitions: 1 on the broker") })
        #expect(mixed.lines.contains { $0.hasPrefix("note: configs not compared for b") })
    }

    @Test func missingBrokersIsABadFlagWithExitStatus2() throws {
        let cmd = try TopicsApplyCommand.parse(["--dir", Self.repoTopics])
        let e = usageError { _ = try cmd.execute(environment: [:]) }
        #expect(e?.code == .usage && e?.exitStatus == 2)
        #expect(e?.message.contains("--brokers") == true)
    }

    @Test func badKafkaPropertyIsABadFlag() throws {
        let cmd = try TopicsApplyCommand.parse(["--dir", Self.repoTopics, "--brokers", "127.0.0.1:1", "--kafka", "no-equals-sign"])
        let e = usageError { _ = try cmd.execute(environment: [:]) }
        #expect(e?.code == .usage)
        #expect(e?.message.contains("no-equals-sign") == true)
    }
}
