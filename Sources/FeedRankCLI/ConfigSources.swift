import Foundation
import Ranking

/// Where a `serve` setting comes from, highest priority first: the flag, the environment
/// (`FEEDRANK_<FLAG>`, e.g. FEEDRANK_BROKERS, FEEDRANK_HTTP_PORT), the `--config` file.
///
/// The config file holds `key = value` lines named like the flags without dashes
/// (`brokers = 127.0.0.1:9092`, `http-port = 8080`), `#` comments, and librdkafka properties
/// as `kafka.<property> = value` (e.g. `kafka.sasl.mechanism = PLAIN`).
struct ConfigSources {
    let environment: [String: String]
    let file: [String: String]
    let fileKafka: [String: String]
    let filePath: String?

    init(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.environment = environment
        self.filePath = configFile
        guard let configFile else { file = [:]; fileKafka = [:]; return }
        guard let data = FileManager.default.contents(atPath: configFile), let text = String(data: data, encoding: .utf8) else {
            throw CLIError.usage("--config \(configFile): cannot read the file")
        }
        var values: [String: String] = [:], kafka: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw CLIError.usage("--config \(configFile):\(n + 1): expected 'key = value', got '\(line)'")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            if key.hasPrefix("kafka.") { kafka[String(key.dropFirst(6))] = value } else { values[key] = value }
        }
        self.file = values
        self.fileKafka = kafka
    }

    /// The value of a flag (given as `flag`), else FEEDRANK_<NAME>, else the config file.
    func value(_ name: String, flag: String?) -> String? {
        if let flag { return flag }
        let env = "FEEDRANK_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        if let v = environment[env], !v.isEmpty { return v }
        return file[name]
    }

    func int(_ name: String, flag: Int?) throws -> Int? {
        if let flag { return flag }
        guard let s = value(name, flag: nil) else { return nil }
        guard let v = Int(s) else { throw CLIError.usage("\(origin(of: name)) \(name): '\(s)' is not an integer") }
        return v
    }

    func double(_ name: String, flag: Double?) throws -> Double? {
        if let flag { return flag }
        guard let s = value(name, flag: nil) else { return nil }
        guard let v = Double(s) else { throw CLIError.usage("\(origin(of: name)) \(name): '\(s)' is not a number") }
        return v
    }

    /// The retrieval settings of `--nprobe`, `--probe-margin` and `--axis-slack` (or their
    /// environment / config file entries), checked.
    func retrieval(nprobe: Int?, probeMargin: Double?, axisSlack: Double? = nil) throws -> RetrievalSettings {
        var r = RetrievalSettings()
        r.nprobe = try int("nprobe", flag: nprobe) ?? r.nprobe
        guard r.nprobe >= 1 else { throw CLIError.usage("--nprobe must be >= 1") }
        if let m = try double("probe-margin", flag: probeMargin) { r.probeMargin = try Self.checkedProbeMargin(m) }
        if let z = try double("axis-slack", flag: axisSlack) { r.axisSlack = try Self.checkedAxisSlack(z) }
        return r
    }

    /// `--axis-slack`'s value, or a usage error naming it (negative or NaN).
    static func checkedAxisSlack(_ z: Double) throws -> Float {
        guard z >= 0 else { throw CLIError.usage("--axis-slack must be >= 0 (inf: whole lists), got \(z)") }
        return Float(z)
    }

    /// `--probe-margin`'s value, or a usage error naming it (negative or NaN).
    static func checkedProbeMargin(_ m: Double) throws -> Float {
        guard m >= 0 else { throw CLIError.usage("--probe-margin must be >= 0 (inf: every --nprobe list), got \(m)") }
        return Float(m)
    }

    func origin(of name: String) -> String {
        let env = "FEEDRANK_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        if environment[env] != nil { return "environment \(env):" }
        return "--config \(filePath ?? "")"
    }
}
