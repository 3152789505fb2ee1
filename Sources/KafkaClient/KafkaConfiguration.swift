import Foundation

/// librdkafka properties, as strings, with FeedRank's defaults applied by each client.
///
/// Any librdkafka property is accepted (SASL, TLS, timeouts, ...): the client passes them
/// through and reports the first one librdkafka rejects by name. Sources, lowest priority
/// first: a properties file, the environment, explicit `key=value` pairs.
public struct KafkaConfiguration: Sendable, Equatable {
    public var properties: [String: String]

    public init(_ properties: [String: String] = [:]) {
        self.properties = properties
    }

    public init(brokers: String, _ extra: [String: String] = [:]) {
        self.properties = extra
        self.properties["bootstrap.servers"] = brokers
    }

    public subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// Returns a copy where `other`'s properties win.
    public func merging(_ other: [String: String]) -> KafkaConfiguration {
        KafkaConfiguration(properties.merging(other) { _, new in new })
    }

    /// Parses `key=value` pairs (as given to `--kafka`); whitespace around both is trimmed.
    public static func parsePairs(_ pairs: [String], source: String = "--kafka") throws -> [String: String] {
        var out: [String: String] = [:]
        for pair in pairs {
            guard let eq = pair.firstIndex(of: "=") else {
                throw KafkaError(code: .configuration, message: "\(source) \(pair): expected KEY=VALUE")
            }
            let key = pair[..<eq].trimmingCharacters(in: .whitespaces)
            let value = pair[pair.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else {
                throw KafkaError(code: .configuration, message: "\(source) \(pair): empty property name")
            }
            out[key] = value
        }
        return out
    }

    /// Parses a Java-style properties file: `key=value` lines, `#`/`!` comments, blank lines.
    public static func parsePropertiesFile(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else {
            throw KafkaError(code: .configuration, message: "cannot read Kafka properties file \(path)")
        }
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            let parsed = try parsePairs([line], source: "\(path):\(n + 1)")
            out.merge(parsed) { _, new in new }
        }
        return out
    }

    /// Where `fromEnvironment` reads properties from by default.
    public static let environmentPrefix = "FEEDRANK_KAFKA_"

    /// The environment variable `fromEnvironment` maps to `property`.
    public static func environmentName(of property: String) -> String {
        environmentPrefix + property.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Properties from the environment: `<prefix>SASL_MECHANISM=PLAIN` becomes
    /// `sasl.mechanism=PLAIN` (underscores become dots, lower case). librdkafka property
    /// names contain no underscores, so the mapping is unambiguous.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment,
                                       prefix: String = environmentPrefix) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in env where k.hasPrefix(prefix) && k.count > prefix.count {
            let name = k.dropFirst(prefix.count).lowercased().replacingOccurrences(of: "_", with: ".")
            out[name] = v
        }
        return out
    }
}
