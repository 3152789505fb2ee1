import Foundation
import KafkaClient

/// One topic as declared in `topics/<name>.json` (schema: topics/topic.schema.json).
public struct TopicDefinition: Sendable, Equatable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int
    /// Topic-level Kafka configs, as strings.
    public var config: [String: String]
    /// Topics of one group must have the same partition count (contract section 1).
    public var coPartitionGroup: String?
    /// The file it came from (for messages).
    public var file: String

    public init(name: String, partitions: Int, replicationFactor: Int, config: [String: String] = [:],
                coPartitionGroup: String? = nil, file: String = "") {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.config = config
        self.coPartitionGroup = coPartitionGroup
        self.file = file
    }

    /// What CreateTopics is asked for.
    public var spec: TopicSpec {
        TopicSpec(name: name, partitions: partitions, replicationFactor: replicationFactor, config: config)
    }

    /// Kafka's legal topic names: 1-249 of [A-Za-z0-9._-], not "." or "..".
    public static func isLegalName(_ name: String) -> Bool {
        guard (1...249).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
    }

    /// The same topics for one deployment: `prefix` before every name (a test run, a staging
    /// cluster) and, when given, another replication factor (a one-broker dev cluster), with
    /// `min.insync.replicas` capped at it so producers with acks=all can still write.
    public static func adapted(_ defs: [TopicDefinition], prefix: String, replicationFactor: Int?) throws(TopicsError) -> [TopicDefinition] {
        try defs.map { (d) throws(TopicsError) -> TopicDefinition in
            var d = d
            d.name = prefix + d.name
            guard isLegalName(d.name) else {
                throw TopicsError(.usage, "--prefix \(prefix): \(d.name) is not a legal Kafka topic name ([A-Za-z0-9._-], at most 249)")
            }
            if let rf = replicationFactor {
                guard rf >= 1 else { throw TopicsError(.usage, "--replication-factor must be >= 1, got \(rf)") }
                d.replicationFactor = rf
                if let isr = d.config["min.insync.replicas"].flatMap(Int.init), isr > rf {
                    d.config["min.insync.replicas"] = String(rf)
                }
            }
            return d
        }
    }
}

/// Reads and checks the declarations of a topics directory.
public enum TopicDefinitions {
    static let knownKeys: Set = ["$schema", "name", "description", "key", "value_schema", "co_partition_group",
                                 "partitions", "replication_factor", "config"]

    /// Every `*.json` file of `directory` except JSON Schemas (`*.schema.json`), sorted by name.
    /// Throws a `.usage` error naming the file and field for anything malformed, and when
    /// topics of one co-partition group disagree on their partition count.
    public static func load(directory: String) throws(TopicsError) -> [TopicDefinition] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasSuffix(".json") && !$0.hasSuffix(".schema.json") }.sorted()
        } catch {
            throw TopicsError(.usage, "--dir \(directory): cannot list the directory (\(error.localizedDescription))")
        }
        guard !files.isEmpty else { throw TopicsError(.usage, "--dir \(directory): no topic files (*.json)") }
        var defs: [TopicDefinition] = []
        for f in files {
            let path = (directory as NSString).appendingPathComponent(f)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TopicsError(.usage, "\(path): cannot read the file")
            }
            defs.append(try parse(data, file: path))
        }
        var seen: [String: String] = [:]
        for d in defs {
            if let other = seen[d.name] { throw TopicsError(.usage, "\(d.file): topic \(d.name) is also declared in \(other)") }
            seen[d.name] = d.file
        }
        try checkCoPartitioning(defs)
        return defs
    }

    /// The file's shape; JSONDecoder checks the types (an integer field rejects `true` and "12").
    private struct File: Decodable {
        var name: String
        var partitions: Int
        var replication_factor: Int
        var config: [String: String]
        var co_partition_group: String?
    }

    /// Parses one declaration.
    public static func parse(_ data: Data, file: String) throws(TopicsError) -> TopicDefinition {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw TopicsError(.usage, "\(file): not valid JSON (\(error.localizedDescription))")
        }
        guard let doc = object as? [String: Any] else { throw TopicsError(.usage, "\(file): expected a JSON object") }
        if let unknown = doc.keys.sorted().first(where: { !knownKeys.contains($0) }) {
            throw TopicsError(.usage, "\(file): unknown field '\(unknown)' (known: \(knownKeys.sorted().joined(separator: ", ")))")
        }
        let f: File
        do { f = try JSONDecoder().decode(File.self, from: data) } catch let error as DecodingError {
            throw TopicsError(.usage, "\(file): \(describe(error))")
        } catch {
            throw TopicsError(.usage, "\(file): \(error)")
        }
        guard TopicDefinition.isLegalName(f.name) else {
            throw TopicsError(.usage, "\(file): field 'name': \(f.name) is not a legal Kafka topic name ([A-Za-z0-9._-], at most 249)")
        }
        guard (1...100_000).contains(f.partitions) else {
            throw TopicsError(.usage, "\(file): field 'partitions': must be in 1...100000, got \(f.partitions)")
        }
        guard (1...32767).contains(f.replication_factor) else {
            throw TopicsError(.usage, "\(file): field 'replication_factor': must be in 1...32767, got \(f.replication_factor)")
        }
        if let g = f.co_partition_group, g.isEmpty {
            throw TopicsError(.usage, "\(file): field 'co_partition_group': must not be empty")
        }
        if let bad = f.config.keys.sorted().first(where: { $0.isEmpty || $0.contains(" ") }) {
            throw TopicsError(.usage, "\(file): field 'config': '\(bad)' is not a Kafka config name")
        }
        return TopicDefinition(name: f.name, partitions: f.partitions, replicationFactor: f.replication_factor,
                               config: f.config, coPartitionGroup: f.co_partition_group, file: file)
    }

    /// "field 'config.retention.ms': expected a string" from a DecodingError.
    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .keyNotFound(let key, let ctx):
            return "field '\(path(ctx.codingPath + [key]))': missing"
        case .typeMismatch(let type, let ctx):
            return "field '\(path(ctx.codingPath))': expected \(type == String.self ? "a string" : type == Int.self ? "an integer" : "\(type)")"
        case .valueNotFound(_, let ctx):
            return "field '\(path(ctx.codingPath))': must not be null"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "not valid JSON" : "field '\(path(ctx.codingPath))': \(ctx.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// Topics of one co-partition group must share one partition count.
    public static func checkCoPartitioning(_ defs: [TopicDefinition]) throws(TopicsError) {
        var groups: [String: [TopicDefinition]] = [:]
        for d in defs { if let g = d.coPartitionGroup { groups[g, default: []].append(d) } }
        for (g, members) in groups.sorted(by: { $0.key < $1.key }) {
            let counts = Set(members.map(\.partitions))
            if counts.count > 1 {
                let list = members.map { "\($0.name)=\($0.partitions)" }.joined(separator: ", ")
                throw TopicsError(.usage, "co-partition group '\(g)' must have one partition count, got \(list)")
            }
        }
    }
}

/// The error type of `feedrank topics`: bad declarations or flags (exit 2), or a broker that
/// failed or refused (exit 1).
public struct TopicsError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Bad flags or topic files: exit status 2.
        case usage
        /// The broker failed or refused a request: exit status 1.
        case runtime
    }

    public let code: Code
    public let message: String
    public let isRetryable: Bool

    public init(_ code: Code, _ message: String, isRetryable: Bool = false) {
        self.code = code
        self.message = message
        self.isRetryable = isRetryable
    }

    public var description: String { message }
    public var exitStatus: Int32 { code == .usage ? 2 : 1 }
}
