import ArgumentParser
import Foundation
import HealthServer
import KafkaClient
import LinearAlgebra
import Logging
import Metrics
import Prometheus
import Ranking
import RedisClient
import ServiceLifecycle
import Worker

/// `feedrank serve`: the stream worker (contract section 6).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the stream worker: Kafka in, ranked feeds out, Redis cache tiers, HTTP health/metrics/rank.",
        discussion: """
        Every flag can also come from the environment as FEEDRANK_<FLAG> (e.g. FEEDRANK_BROKERS, \
        FEEDRANK_HTTP_PORT) and from --config FILE (key = value lines; librdkafka properties as \
        kafka.<property> = value). Flags win over the environment, which wins over the file. librdkafka \
        properties also come from FEEDRANK_KAFKA_<PROPERTY> (dots as underscores) and --kafka KEY=VALUE.
        """)

    @Option(help: "Model bundle directory.") var bundle: String?
    @Option(help: "Kafka bootstrap servers, HOST:PORT[,..].") var brokers: String?
    @Option(help: "Redis URL, redis://[:password@]HOST:PORT[/DB].") var redis: String?
    @Option(help: "Consumer group id (default feedrank).") var group: String?
    @Option(name: .customLong("http-port"), help: "HTTP port for /health, /ready, /metrics, /rank (default 8080; 0 disables).") var httpPort: Int?
    @Option(name: .customLong("http-host"), help: "HTTP bind address (default 0.0.0.0).") var httpHost: String?
    @Option(name: .customLong("kafka"), help: "A librdkafka property KEY=VALUE (repeatable; SASL, TLS, ...).") var kafka: [String] = []
    @Option(help: "Config file (key = value lines).") var config: String?
    @Option(help: "IVF-PQ index file from `feedrank index build` (default: built at start).") var index: String?
    @Option(name: .customLong("activity-topic")) var activityTopic: String?
    @Option(name: .customLong("requests-topic")) var requestsTopic: String?
    @Option(name: .customLong("responses-topic")) var responsesTopic: String?
    @Option(name: .customLong("dlq-topic")) var dlqTopic: String?
    @Option(name: .customLong("state-topic")) var stateTopic: String?
    @Option(help: "Processing lanes (default: the number of cores).") var lanes: Int?
    @Option(name: .customLong("refresh-window-ms"), help: "Coalescing window of event-driven re-ranks (default 200).") var refreshWindowMs: Int?
    @Option(name: .customLong("max-in-flight"), help: "Records with unacknowledged outputs before fetching pauses (default 20000).") var maxInFlight: Int?
    @Option(name: .customLong("max-uncommitted"), help: "Records past the commit position before fetching pauses (default 50000).") var maxUncommitted: Int?
    @Option(name: .customLong("max-record-bytes"), help: "Input records larger than this go to the DLQ as too_large (default 1048576).") var maxRecordBytes: Int?
    @Option(name: .customLong("log-level"), help: "trace|debug|info|notice|warning|error|critical (default info).") var logLevel: String?
    @Option(name: .customLong("log-format"), help: "json|text (default json).") var logFormat: String?
    @Option(help: "Inverted lists probed per category (default 4).") var nprobe: Int?
    @Option(help: "Lists after a category's best are probed only within this probe-score margin (default 0.025; inf: all --nprobe).") var probeMargin: Double?
    @Option(help: "With an index ordered along its principal axis, a list stops at the first block this many standard deviations cannot lift into a category's top k (default 3.5; inf: whole lists).") var axisSlack: Double?

    func run() async throws {
        let src = try ConfigSources(configFile: config)
        try LogSetup.bootstrap(format: src.value("log-format", flag: logFormat) ?? "json",
                               level: src.value("log-level", flag: logLevel) ?? "info")
        let logger = Logger(label: "feedrank")
        guard let bundlePath = src.value("bundle", flag: bundle) else { throw CLIError.usage("--bundle is required (or FEEDRANK_BUNDLE)") }
        guard let brokers = src.value("brokers", flag: brokers) else { throw CLIError.usage("--brokers is required (or FEEDRANK_BROKERS)") }
        let redisURL = src.value("redis", flag: redis) ?? "redis://127.0.0.1:6379"
        do { _ = try RedisConfiguration(url: redisURL) } catch { throw CLIError.usage("--redis \((error as? RedisError)?.message ?? "\(error)")") }

        var kafkaProps = src.fileKafka.merging(KafkaConfiguration.fromEnvironment(src.environment)) { _, new in new }
        do {
            kafkaProps.merge(try KafkaConfiguration.parsePairs(kafka)) { _, new in new }
        } catch { throw CLIError.usage("\(error)") }
        kafkaProps["bootstrap.servers"] = brokers
        var wc = WorkerConfiguration(kafka: KafkaConfiguration(kafkaProps))
        wc.group = src.value("group", flag: group) ?? wc.group
        wc.redisURL = redisURL
        wc.topics.activity = src.value("activity-topic", flag: activityTopic) ?? wc.topics.activity
        wc.topics.requests = src.value("requests-topic", flag: requestsTopic) ?? wc.topics.requests
        wc.topics.responses = src.value("responses-topic", flag: responsesTopic) ?? wc.topics.responses
        wc.topics.deadLetter = src.value("dlq-topic", flag: dlqTopic) ?? wc.topics.deadLetter
        wc.topics.state = src.value("state-topic", flag: stateTopic) ?? wc.topics.state
        wc.lanes = try src.int("lanes", flag: lanes) ?? ProcessInfo.processInfo.activeProcessorCount
        wc.refreshWindowMs = try src.int("refresh-window-ms", flag: refreshWindowMs) ?? wc.refreshWindowMs
        wc.maxInFlight = try src.int("max-in-flight", flag: maxInFlight) ?? wc.maxInFlight
        wc.maxUncommitted = try src.int("max-uncommitted", flag: maxUncommitted) ?? wc.maxUncommitted
        wc.maxRecordBytes = try src.int("max-record-bytes", flag: maxRecordBytes) ?? wc.maxRecordBytes
        guard wc.lanes >= 1 else { throw CLIError.usage("--lanes must be >= 1") }
        guard wc.maxInFlight >= 1 else { throw CLIError.usage("--max-in-flight must be >= 1") }
        guard wc.maxUncommitted >= wc.maxInFlight else {
            throw CLIError.usage("--max-uncommitted (\(wc.maxUncommitted)) must be >= --max-in-flight (\(wc.maxInFlight))")
        }
        guard wc.maxRecordBytes >= 1 else { throw CLIError.usage("--max-record-bytes must be >= 1") }
        guard wc.refreshWindowMs >= 0 else { throw CLIError.usage("--refresh-window-ms must be >= 0") }
        let port = try src.int("http-port", flag: httpPort) ?? 8080
        guard (0...65535).contains(port) else { throw CLIError.usage("--http-port \(port): not a port number") }
        let host = src.value("http-host", flag: httpHost) ?? "0.0.0.0"
        let retrieval = try src.retrieval(nprobe: nprobe, probeMargin: probeMargin, axisSlack: axisSlack)

        BLAS.threadCount = 1
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let b = try CatalogLoader.loadBundle(bundlePath, logger: logger)
        logger.info("bundle loaded", metadata: ["model_version": "\(b.manifest.modelVersion)", "items": "\(b.itemCount)"])
        let idx = try CatalogLoader.loadIndex(src.value("index", flag: index), bundle: b, logger: logger)
        let catalog = try CatalogLoader.catalog(bundle: b, index: idx, retrieval: retrieval)
        let worker = StreamWorker(configuration: wc, catalog: catalog, logger: Logger(label: "feedrank.worker"))

        var services: [any Service] = [worker]
        if port > 0 {
            services.append(HealthServer.makeApplication(worker: worker, registry: registry, host: host, port: port,
                                                         logger: Logger(label: "feedrank.http")))
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                                            failureTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let e as WorkerError {
            throw CLIError.runtime(e.message)
        } catch {
            throw CLIError.runtime("\(error)")
        }
    }
}
