import Foundation
import Logging

/// One JSON object per log line on stderr: {"ts", "level", "logger", "msg", ...metadata}.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata { fields[k] = "\(v)" }
        if let p = metadataProvider { for (k, v) in p.get() { fields[k] = "\(v)" } }
        if let m = event.metadata { for (k, v) in m { fields[k] = "\(v)" } }
        var line = "{\"ts\":\"\(Self.timestamp())\",\"level\":\"\(event.level)\",\"logger\":\(Self.quote(label)),\"msg\":\(Self.quote(event.message.description))"
        for (k, v) in fields.sorted(by: { $0.key < $1.key }) {
            line += ",\(Self.quote(k)):"
            // Numbers and booleans stay unquoted so log pipelines can aggregate them.
            if Double(v) != nil || v == "true" || v == "false" || v == "null" { line += v } else { line += Self.quote(v) }
        }
        line += "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                      tmv.tm_hour, tmv.tm_min, tmv.tm_sec, Int(tv.tv_usec / 1000))
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where ch.value < 0x20: out += String(format: "\\u%04x", ch.value)
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }
}

enum LogSetup {
    /// Bootstraps swift-log once: JSON lines (default) or plain text, at `level`.
    static func bootstrap(format: String, level: String) throws {
        guard let lvl = Logger.Level(rawValue: level) else {
            throw CLIError.usage("--log-level \(level): expected one of trace, debug, info, notice, warning, error, critical")
        }
        switch format {
        case "json": LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: lvl) }
        case "text":
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = lvl
                return h
            }
        default: throw CLIError.usage("--log-format \(format): expected json or text")
        }
    }
}
