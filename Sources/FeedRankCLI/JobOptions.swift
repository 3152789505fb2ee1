import ArgumentParser
import Foundation
import KafkaClient
import LinearAlgebra
import Logging
import Ranking
import RedisClient
import Worker

/// The flags `replay` and `batch` share. Like `serve`'s, each can also come from the
/// environment (FEEDRANK_<FLAG>) and from --config FILE; flags win.
struct JobOptions: ParsableArguments {
    @Option(help: "Model bundle directory.") var bundle: String?
    @Option(help: "Kafka bootstrap servers, HOST:PORT[,..].") var brokers: String?
    @Option(help: "Redis URL, redis://[:password@]HOST:PORT[/DB] (default redis://127.0.0.1:6379).") var redis: String?
    @Option(name: .customLong("kafka"), help: "A librdkafka property KEY=VALUE (repeatable; SASL, TLS, ...).") var kafka: [String] = []
    @Option(help: "Config file (key = value lines, as for serve).") var config: String?
    @Option(help: "IVF-PQ index file from `feedrank index build` (default: built at start).") var index: String?
    @Option(help: "Inverted lists probed per category (default 4).") var nprobe: Int?
    @Option(help: "Lists after a category's best are probed only within this probe-score margin (default 0.025; inf: all --nprobe).") var probeMargin: Double?
    @Option(help: "With an index ordered along its principal axis, a list stops at the first block this many standard deviations cannot lift into a category's top k (default 3.5; inf: whole lists).") var axisSlack: Double?
    @Option(name: .customLong("activity-topic")) var activityTopic: String?
    @Option(name: .customLong("responses-topic")) var responsesTopic: String?
    @Option(name: .customLong("dlq-topic")) var dlqTopic: String?
    @Option(name: .customLong("state-topic")) var stateTopic: String?
    @Option(name: .customLong("key-prefix"), help: "Prefix for every Redis key written or read (default none; for isolated test and benchmark runs).") var keyPrefix: String?
    @Option(help: "Ranking threads, one ranker each (default: the number of cores).") var threads: Int?
    @Option(name: .customLong("batch-size"), help: "Users per embedding batch (one sgemm per tower layer) and per checkpoint step (default 1000).") var batchSize: Int?
    @Option(name: .customLong("num-items"), help: "Items per ranked list, 1...500 (default 50).") var numItems: Int?
    @Flag(name: .customLong("allow-model-mismatch"), help: "Run even though the existing states belong to another model_version.") var allowModelMismatch = false
    @Option(name: .customLong("log-level"), help: "trace|debug|info|notice|warning|error|critical (default notice).") var logLevel: String?
    @Option(name: .customLong("log-format"), help: "json|text (default text on a terminal, json otherwise).") var logFormat: String?

    struct Resolved {
        var sources: ConfigSources
        var bundlePath: String
        var brokers: String?
        var redisURL: String
        var kafka: KafkaConfiguration?
        var topics: TopicNames
        var keyPrefix: String
        var threads: Int
        var batchSize: Int
        var numItems: Int
    }

    /// Resolves flags, environment and config file; bad values are usage errors (exit 2).
    func resolve(requireBrokers: Bool) throws -> Resolved {
        let src = try ConfigSources(configFile: config)
        let terminal = isatty(STDERR_FILENO) != 0
        try LogSetup.bootstrap(format: src.value("log-format", flag: logFormat) ?? (terminal ? "text" : "json"),
                               level: src.value("log-level", flag: logLevel) ?? "notice")
        guard let bundlePath = src.value("bundle", flag: bundle) else { throw CLIError.usage("--bundle is required (or FEEDRANK_BUNDLE)") }
        let brokers = src.value("brokers", flag: brokers)
        if requireBrokers && brokers == nil { throw CLIError.usage("--brokers is required (or FEEDRANK_BROKERS)") }
        let redisURL = src.value("redis", flag: redis) ?? "redis://127.0.0.1:6379"
        do { _ = try RedisConfiguration(url: redisURL) } catch { throw CLIError.usage("--redis \((error as? RedisError)?.message ?? "\(error)")") }
        var kafkaConfig: KafkaConfiguration?
        if let brokers {
            var props = src.fileKafka.merging(KafkaConfiguration.fromEnvironment(src.environment)) { _, new in new }
            do { props.merge(try KafkaConfiguration.parsePairs(kafka)) { _, new in new } } catch { throw CLIError.usage("\(error)") }
            props["bootstrap.servers"] = brokers
            kafkaConfig = KafkaConfiguration(props)
        }
        var topics = TopicNames()
        topics.activity = src.value("activity-topic", flag: activityTopic) ?? topics.activity
        topics.responses = src.value("responses-topic", flag: responsesTopic) ?? topics.responses
        topics.deadLetter = src.value("dlq-topic", flag: dlqTopic) ?? topics.deadLetter
        topics.state = src.value("state-topic", flag: stateTopic) ?? topics.state
        let threads = try src.int("threads", flag: threads) ?? ProcessInfo.processInfo.activeProcessorCount
        guard threads >= 1 else { throw CLIError.usage("--threads must be >= 1, got \(threads)") }
        let batchSize = try src.int("batch-size", flag: batchSize) ?? 1000
        guard batchSize >= 1 else { throw CLIError.usage("--batch-size must be >= 1, got \(batchSize)") }
        let numItems = try src.int("num-items", flag: numItems) ?? 50
        guard RankingRequest.numItemsRange.contains(numItems) else { throw CLIError.usage("--num-items \(numItems): must be in 1...500") }
        return Resolved(sources: src, bundlePath: bundlePath, brokers: brokers, redisURL: redisURL, kafka: kafkaConfig,
                        topics: topics, keyPrefix: src.value("key-prefix", flag: keyPrefix) ?? "", threads: threads,
                        batchSize: batchSize, numItems: numItems)
    }

    /// Loads the bundle and index (or builds the index) into a catalogue.
    func catalog(_ r: Resolved, logger: Logger) throws -> RankingCatalog {
        BLAS.threadCount = 1  // parallelism comes from the ranking threads
        let retrieval = try r.sources.retrieval(nprobe: nprobe, probeMargin: probeMargin, axisSlack: axisSlack)
        let b = try CatalogLoader.loadBundle(r.bundlePath, logger: logger)
        let idx = try CatalogLoader.loadIndex(r.sources.value("index", flag: index), bundle: b, logger: logger)
        return try CatalogLoader.catalog(bundle: b, index: idx, retrieval: retrieval)
    }
}

/// Parses a time flag: milliseconds since the epoch or ISO-8601 (2026-11-20T08:00:00Z, with or
/// without fractional seconds, or a date 2026-11-20 meaning its UTC midnight).
func parseTime(_ text: String, flag: String) throws -> Int64 {
    if let ms = Int64(text), ms >= 0 { return ms }
    let full = ISO8601DateFormatter()
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let day = ISO8601DateFormatter()
    day.formatOptions = [.withFullDate]
    for f in [full, fractional, day] {
        if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
    }
    throw CLIError.usage("\(flag) \(text): expected milliseconds since the epoch or an ISO-8601 time such as 2026-11-20T08:00:00Z")
}

/// Stops a job on SIGINT/SIGTERM: the first signal cancels `task` (the job finishes what is
/// in flight and saves its progress), a second one exits at once.
final class SignalCancellation: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private var received = 0

    private let queue = DispatchQueue(label: "feedrank.signals")

    init<T: Sendable>(cancelling task: Task<T, Error>, label: String) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler { [self] in
                received += 1
                if received > 1 { Foundation.exit(130) }
                FileHandle.standardError.write(Data("\n\(label): stopping after the work in flight (signal again to exit now)\n".utf8))
                task.cancel()
            }
            s.resume()
            sources.append(s)
        }
    }

    func cancel() { sources.forEach { $0.cancel() } }
}
