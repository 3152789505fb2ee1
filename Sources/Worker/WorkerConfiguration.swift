import KafkaClient

/// Topic names of contract section 1 (each configurable).
public struct TopicNames: Sendable, Equatable {
    public var activity = "user-activity"
    public var requests = "ranking-requests"
    public var responses = "ranking-responses"
    public var deadLetter = "ranking-dlq"
    public var state = "user-state"
    public init() {}
}

/// Everything `feedrank serve` is configured with (flags, environment, config file).
public struct WorkerConfiguration: Sendable {
    /// librdkafka properties shared by every client (bootstrap.servers, security, ...).
    public var kafka: KafkaConfiguration
    public var group = "feedrank"
    public var topics = TopicNames()
    public var redisURL = "redis://127.0.0.1:6379"
    public var cache = CacheKeys()
    /// Coalescing window of event-driven re-ranks per user.
    public var refreshWindowMs = 200
    /// Items in an event-driven re-rank.
    public var refreshNumItems = 50
    /// Parallel processing lanes (partitions are spread over them; one lane keeps a
    /// partition's order). Default: the number of cores.
    public var lanes = 2
    /// Records handed to lanes whose outputs are not all acknowledged, above which fetching pauses.
    /// It must cover the records that arrive while outputs wait: rate × (produce linger + broker
    /// round trip) plus every record held for a coalesced re-rank (the refresh window). 2,000
    /// capped an activity flood at ~55,000 events/s on the 2-core bench machine, with 40 % of
    /// the CPU idle (the dispatcher paused, the lanes drained); 20,000 gave 77,000–85,000
    /// (BENCHMARKS.md, issue 6). Memory: about a record's bytes each.
    public var maxInFlight = 20_000
    /// Records past the commit position (done or not) above which fetching pauses too: bounds
    /// what a restart repeats when one record (e.g. a click waiting for its coalesced re-rank)
    /// holds the commit position while later records complete.
    public var maxUncommitted = 50_000
    /// How often processed offsets are committed.
    public var commitIntervalMs = 100
    /// Longest wait for in-flight work on shutdown or revocation.
    public var drainTimeoutSeconds = 30
    /// Pipeline Redis writes in batches of up to this many commands.
    public var redisBatch = 256
    /// Input records larger than this go to the DLQ (the input topics' max.message.bytes).
    public var maxRecordBytes = 1_048_576
    /// How often consumer lag is measured.
    public var lagIntervalSeconds = 5

    public init(kafka: KafkaConfiguration) {
        self.kafka = kafka
    }
}
