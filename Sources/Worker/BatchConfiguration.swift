import KafkaClient

/// `feedrank batch`'s settings.
public struct BatchConfiguration: Sendable {
    /// librdkafka properties; nil: no broker — states come from L4 and nothing is published.
    public var kafka: KafkaConfiguration?
    public var topics = TopicNames()
    public var redisURL = "redis://127.0.0.1:6379"
    /// Prepended to every Redis key (isolation of tests and benchmark runs; default none).
    public var keyPrefix = ""
    public var cache = CacheKeys()
    /// A user is active when their state's t_last is within this many days before T.
    public var activeDays = 30.0
    /// Users per embedding batch (one sgemm per tower layer) and per checkpoint step.
    public var batchSize = 1000
    public var threads = 2
    public var numItems = 50
    /// Also send every ranking to the response topic.
    public var publish = false
    /// T of the rankings (ms; default: now, or the resumed run's T).
    public var at: Int64?
    /// Checkpoint file; nil: the Redis key `feedrank:batch:checkpoint` (with the key prefix).
    public var checkpointPath: String?
    /// Ignore an unfinished checkpoint and start over.
    public var restart = false
    public var allowModelMismatch = false
    /// Rank at most this many active users (benchmarks).
    public var limit: Int?
    /// Longest wait for the broker to acknowledge published rankings at the end.
    public var ackTimeoutSeconds = 300

    public init(kafka: KafkaConfiguration?) {
        self.kafka = kafka
    }

    public var checkpointKey: String { keyPrefix + "feedrank:batch:checkpoint" }
}

/// What a batch run did.
public struct BatchSummary: Sendable {
    /// Where the states came from ("topic user-state, 12 partitions" or "L4").
    public var source = ""
    public var statesRead = 0
    public var activeUsers = 0
    /// T of the rankings.
    public var at: Int64 = 0
    public var runId = ""
    public var resumed = false
    /// Active users an interrupted run had already ranked (not redone).
    public var alreadyDone = 0
    public var ranked = 0
    public var l1Written = 0
    /// Kept because the live worker wrote a newer ranking during the run.
    public var l1Skipped = 0
    public var published = 0
    public var short = 0
    public var boundHits = 0
    public var coldStarts = 0
    public var completed = false
    public var seconds = 0.0
    public var loadSeconds = 0.0
    public var rankSeconds = 0.0
    public var threads = 0

    public init() {}

    public var usersPerSecond: Double { rankSeconds > 0 ? Double(ranked) / rankSeconds : 0 }

    public var lines: [String] {
        var out = [
            "states: \(statesRead) from \(source) in \(String(format1: loadSeconds)) s; \(activeUsers) active at T=\(at)",
            "\(resumed ? "resumed run \(runId): \(alreadyDone) users done before, " : "run \(runId): ")ranked \(ranked) in \(String(format1: rankSeconds)) s on \(threads) thread(s): \(Int(usersPerSecond)) users/s",
            "L1 written \(l1Written), kept (live worker newer) \(l1Skipped), published \(published); short lists \(short), search bound hits \(boundHits)",
            completed ? "completed in \(String(format1: seconds)) s" : "interrupted after \(String(format1: seconds)) s: rerun to finish (resumes after the checkpoint)",
        ]
        if coldStarts > 0 { out.append("cold starts \(coldStarts)") }
        return out
    }
}

/// What `feedrank batch --verify` found.
public struct BatchVerification: Sendable {
    public var checked = 0
    public var missing = 0
    public var invalid = 0
    /// The first violations, "user N: ..." lines.
    public var examples: [String] = []
    public var at: Int64 = 0

    public init() {}

    public var ok: Bool { missing == 0 && invalid == 0 && checked > 0 }

    public var lines: [String] {
        ["checked \(checked) L1 entries at T=\(at): \(checked - missing - invalid) satisfy contract section 3 with the backfill TTL, \(missing) missing, \(invalid) with violations"]
            + examples
    }
}
