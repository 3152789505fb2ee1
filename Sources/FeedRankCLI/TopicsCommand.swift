import ArgumentParser
import Foundation
import KafkaClient

/// `feedrank topics` (issue 8): FeedRank's Kafka topics as code.
struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Kafka topics as code: create FeedRank's topics from topics/*.json and report drift.",
        subcommands: [TopicsApplyCommand.self]
    )
}

/// `feedrank topics apply [--dry-run] [--brokers ..] [--dir topics]`: creates the declared topics
/// that are missing and reports how existing ones differ from their declaration (partition
/// count; configs when the broker answers DescribeConfigs). Existing topics are never altered.
/// Exit status: 0 done (drift is reported, not fatal unless --fail-on-drift), 2 bad flags or
/// topic files, 1 broker failure or a topic the broker refused.
struct TopicsApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Create missing topics and report drift in existing ones.",
        discussion: """
        Every flag also comes from the environment: FEEDRANK_BROKERS, FEEDRANK_TOPICS_DIR, \
        FEEDRANK_TOPIC_PREFIX, FEEDRANK_REPLICATION_FACTOR; librdkafka properties (SASL, TLS) \
        from FEEDRANK_KAFKA_<PROPERTY with dots as underscores> and --kafka KEY=VALUE.
        """)

    @Flag(name: .customLong("dry-run"), help: "Only report what would be created; change nothing.")
    var dryRun = false

    @Option(help: "Bootstrap brokers HOST:PORT[,..] (env FEEDRANK_BROKERS).")
    var brokers: String?

    @Option(help: "Directory of topic declarations (env FEEDRANK_TOPICS_DIR; default: topics).")
    var dir: String?

    @Option(help: "Prepended to every topic name, e.g. 'staging.' (env FEEDRANK_TOPIC_PREFIX). The worker's --*-topic flags must match.")
    var prefix: String?

    @Option(name: .customLong("replication-factor"),
            help: "Override every topic's replication factor (a one-broker dev cluster: 1); min.insync.replicas is capped at it (env FEEDRANK_REPLICATION_FACTOR).")
    var replicationFactor: Int?

    @Option(name: .customLong("kafka"), help: "A librdkafka property KEY=VALUE (repeatable), e.g. sasl.mechanism=SCRAM-SHA-512.")
    var kafka: [String] = []

    @Option(help: "Seconds to wait for each admin request and for created topics to appear.")
    var timeout: Double = 30

    @Flag(name: .customLong("fail-on-drift"), help: "Exit 1 when an existing topic differs from its declaration (for CI checks).")
    var failOnDrift = false

    func run() throws {
        do {
            let report = try execute(environment: ProcessInfo.processInfo.environment)
            for line in report.lines { print(line) }
            try check(report)
        } catch {
            FileHandle.standardError.write(Data("feedrank topics apply: \(error.message)\n".utf8))
            throw ExitCode(error.exitStatus)
        }
    }

    /// Reads the declarations and applies them; `environment` supplies defaults for the flags.
    func execute(environment env: [String: String]) throws(TopicsError) -> TopicsReport {
        guard let brokers = nonEmpty(brokers) ?? nonEmpty(env["FEEDRANK_BROKERS"]) else {
            throw TopicsError(.usage, "--brokers (or FEEDRANK_BROKERS) is required")
        }
        guard timeout > 0, timeout <= 3600 else { throw TopicsError(.usage, "--timeout must be in (0, 3600] seconds, got \(timeout)") }
        var rf = replicationFactor
        if rf == nil, let raw = nonEmpty(env["FEEDRANK_REPLICATION_FACTOR"]) {
            guard let n = Int(raw) else { throw TopicsError(.usage, "FEEDRANK_REPLICATION_FACTOR=\(raw): expected an integer") }
            rf = n
        }
        let directory = nonEmpty(dir) ?? nonEmpty(env["FEEDRANK_TOPICS_DIR"]) ?? "topics"
        let defs = try TopicDefinition.adapted(TopicDefinitions.load(directory: directory),
                                               prefix: prefix ?? env["FEEDRANK_TOPIC_PREFIX"] ?? "",
                                               replicationFactor: rf)
        var properties = KafkaConfiguration.fromEnvironment(env)
        do { properties.merge(try KafkaConfiguration.parsePairs(kafka)) { _, flag in flag } } catch {
            throw TopicsError(.usage, "\(error)")
        }
        let config = KafkaConfiguration(brokers: brokers, properties)
        let applier = TopicsApplier(configuration: config, timeout: .milliseconds(Int64(timeout * 1000)))
        return try applier.apply(defs, dryRun: dryRun)
    }

    /// A report's exit status: topics the broker refused, or drift with --fail-on-drift, fail the run.
    func check(_ report: TopicsReport) throws(TopicsError) {
        if report.failed > 0 {
            throw TopicsError(.runtime, "\(report.failed) topics could not be created (see above)")
        }
        if failOnDrift && report.drifted > 0 {
            throw TopicsError(.runtime, "\(report.drifted) topics differ from their declaration (--fail-on-drift)")
        }
    }

    private func nonEmpty(_ s: String?) -> String? {
        guard let s, !s.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        return s
    }
}
