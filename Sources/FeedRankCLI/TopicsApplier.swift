import Foundation
import KafkaClient

/// What `topics apply` did, or would do, to one topic.
public struct TopicOutcome: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case created
        case wouldCreate
        case upToDate
        /// The topic exists but differs from its declaration; one line per difference.
        case drifted([String])
        /// CreateTopics refused it (the broker's message).
        case failed(String)
    }

    public var name: String
    public var state: State
    /// "12 partitions, replication 3, 5 configs" for creations.
    public var detail: String

    public init(name: String, state: State, detail: String = "") {
        self.name = name
        self.state = state
        self.detail = detail
    }
}

/// The result of one `topics apply` run.
public struct TopicsReport: Sendable, Equatable {
    public var outcomes: [TopicOutcome]
    /// Existing topics whose configs could not be compared (the broker did not answer
    /// DescribeConfigs, or reported no overrides at all, as Tansu does): only partition counts
    /// were.
    public var configsNotCompared: [String]

    public init(outcomes: [TopicOutcome], configsNotCompared: [String] = []) {
        self.outcomes = outcomes
        self.configsNotCompared = configsNotCompared
    }

    public func count(_ match: (TopicOutcome.State) -> Bool) -> Int { outcomes.filter { match($0.state) }.count }
    public var created: Int { count { $0 == .created } }
    public var wouldCreate: Int { count { $0 == .wouldCreate } }
    public var upToDate: Int { count { $0 == .upToDate } }
    public var drifted: Int { count { if case .drifted = $0 { true } else { false } } }
    public var failed: Int { count { if case .failed = $0 { true } else { false } } }
    /// Whether this run changed (or, in a dry run, would change) the cluster.
    public var hasChanges: Bool { created + wouldCreate > 0 }

    /// One line per topic, then a summary ("no changes" when everything is up to date).
    public var lines: [String] {
        var out: [String] = []
        let width = outcomes.map(\.name.count).max() ?? 0
        for o in outcomes {
            let name = o.name.padding(toLength: width, withPad: " ", startingAt: 0)
            switch o.state {
            case .created: out.append("  created       \(name)  \(o.detail)")
            case .wouldCreate: out.append("  would create  \(name)  \(o.detail)")
            case .upToDate: out.append("  up to date    \(o.name)")
            case .drifted(let diffs):
                out.append("  DRIFT         \(name)  \(diffs[0])")
                for d in diffs.dropFirst() { out.append("                \(String(repeating: " ", count: width))  \(d)") }
            case .failed(let message): out.append("  FAILED        \(name)  \(message)")
            }
        }
        if !configsNotCompared.isEmpty {
            out.append("note: configs not compared for \(configsNotCompared.joined(separator: ", ")): the broker reported no topic overrides (Tansu reports every config as a default); partition counts were compared")
        }
        out.append(summary)
        return out
    }

    public var summary: String {
        if !hasChanges && drifted == 0 && failed == 0 { return "no changes: \(upToDate) topics up to date" }
        var parts: [String] = []
        if created > 0 { parts.append("\(created) created") }
        if wouldCreate > 0 { parts.append("\(wouldCreate) to create (dry run)") }
        if upToDate > 0 { parts.append("\(upToDate) up to date") }
        if drifted > 0 { parts.append("\(drifted) drifted (not changed: see above)") }
        if failed > 0 { parts.append("\(failed) failed") }
        return parts.joined(separator: ", ")
    }
}

/// Compares declarations with the broker, and creates what is missing. Existing topics are
/// never altered: partition changes move keys between partitions (breaking co-partitioning and
/// per-user order) and config changes deserve a human, so drift is reported for an operator.
public struct TopicsApplier: Sendable {
    public var configuration: KafkaConfiguration
    public var timeout: Duration

    public init(configuration: KafkaConfiguration, timeout: Duration = .seconds(30)) {
        self.configuration = configuration
        self.timeout = timeout
    }

    /// The differences between a declaration and the broker's topic; empty when it matches.
    /// `configs` are the topic-level overrides the broker reports (KafkaAdmin leaves out entries
    /// flagged as defaults); nil: the broker didn't answer DescribeConfigs. A declared key the
    /// broker does not override is drift only when the broker reports other overrides for the
    /// topic: Tansu flags every topic config as a default, so an empty map says nothing.
    /// `configsCompared` is false when the configs could not be compared.
    public static func drift(of def: TopicDefinition, partitions: Int, configs: [String: String]?)
        -> (diffs: [String], configsCompared: Bool) {
        var out: [String] = []
        if partitions != def.partitions {
            let hint = partitions < def.partitions
                ? "adding partitions moves keys, so plan it with the co-partitioned topics together"
                : "Kafka cannot remove partitions"
            out.append("partitions: \(partitions) on the broker, \(def.partitions) declared (\(hint))")
        }
        guard let configs, !(configs.isEmpty && !def.config.isEmpty) else { return (out, def.config.isEmpty) }
        for (key, want) in def.config.sorted(by: { $0.key < $1.key }) {
            if let have = configs[key] {
                if have != want { out.append("config \(key): \(have) on the broker, \(want) declared") }
            } else {
                out.append("config \(key): no override on the broker (its default applies), \(want) declared")
            }
        }
        return (out, true)
    }

    public func apply(_ defs: [TopicDefinition], dryRun: Bool) throws(TopicsError) -> TopicsReport {
        let admin: KafkaAdmin
        do { admin = try KafkaAdmin(configuration: configuration) } catch {
            throw TopicsError(.usage, "\(error)")
        }
        let names = defs.map(\.name)
        let existing = try describe(admin, names)
        var uncompared: [String] = []
        var outcomes: [String: TopicOutcome] = [:]
        var missing: [TopicDefinition] = []
        func compare(_ d: TopicDefinition, _ t: TopicDescription) -> TopicOutcome {
            let (diffs, compared) = Self.drift(of: d, partitions: t.partitions, configs: t.config)
            if !compared { uncompared.append(d.name) }
            return TopicOutcome(name: d.name, state: diffs.isEmpty ? .upToDate : .drifted(diffs))
        }
        for d in defs {
            if let t = existing[d.name] {
                outcomes[d.name] = compare(d, t)
            } else {
                missing.append(d)
            }
        }
        if dryRun {
            for d in missing { outcomes[d.name] = TopicOutcome(name: d.name, state: .wouldCreate, detail: Self.describe(d)) }
        } else if !missing.isEmpty {
            let results: [String: KafkaError?]
            do { results = try admin.createTopics(missing.map(\.spec), timeout: timeout) } catch {
                throw TopicsError(.runtime, "creating \(missing.map(\.name).joined(separator: ", ")): \(error)",
                                  isRetryable: (error as? KafkaError)?.isRetryable ?? false)
            }
            var created: [TopicDefinition] = []
            for d in missing {
                switch results[d.name] {
                case .some(.none):
                    created.append(d)
                    outcomes[d.name] = TopicOutcome(name: d.name, state: .created, detail: Self.describe(d))
                case .some(.some(let e)) where e.isAlreadyExists:
                    // Someone else created it between our describe and create: compare instead.
                    if let t = try describe(admin, [d.name])[d.name] {
                        outcomes[d.name] = compare(d, t)
                    } else {
                        outcomes[d.name] = TopicOutcome(name: d.name, state: .failed("the broker says it exists but does not list it"))
                    }
                case .some(.some(let e)):
                    outcomes[d.name] = TopicOutcome(name: d.name, state: .failed(e.message))
                case .none:
                    outcomes[d.name] = TopicOutcome(name: d.name, state: .failed("the broker did not answer for this topic"))
                }
            }
            try waitUntilVisible(admin, created)
        }
        return TopicsReport(outcomes: defs.compactMap { outcomes[$0.name] }, configsNotCompared: uncompared)
    }

    static func describe(_ d: TopicDefinition) -> String {
        "\(d.partitions) partitions, replication \(d.replicationFactor), \(d.config.count) configs"
    }

    private func describe(_ admin: KafkaAdmin, _ names: [String]) throws(TopicsError) -> [String: TopicDescription] {
        do { return try admin.describeTopics(names, timeout: timeout) } catch {
            let brokers = configuration["bootstrap.servers"] ?? "?"
            throw TopicsError(.runtime, "cannot describe topics on \(brokers): \(error)", isRetryable: (error as? KafkaError)?.isRetryable ?? false)
        }
    }

    /// Metadata can lag CreateTopics; wait (bounded by the timeout) until every created topic is
    /// listed with its partitions, so a second run right after this one sees them.
    private func waitUntilVisible(_ admin: KafkaAdmin, _ created: [TopicDefinition]) throws(TopicsError) {
        guard !created.isEmpty else { return }
        let deadline = ContinuousClock.now + timeout
        var pending = created
        while true {
            let seen = try describe(admin, pending.map(\.name))
            pending = pending.filter { seen[$0.name]?.partitions != $0.partitions }
            if pending.isEmpty { return }
            if ContinuousClock.now >= deadline {
                throw TopicsError(.runtime, "created \(pending.map(\.name).joined(separator: ", ")) but the broker's metadata does not show it within \(timeout)",
                                  isRetryable: true)
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }
}
