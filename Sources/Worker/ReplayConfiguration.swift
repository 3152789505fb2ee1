import KafkaClient

/// Where a replay starts.
public enum ReplayStart: Sendable, Equatable {
    /// From the first record of the log, with empty states (a rebuild).
    case earliest
    /// From the first record of each partition whose timestamp is >= this (ms), on top of the
    /// states in the `user-state` topic.
    case time(Int64)
}

/// `feedrank replay`'s settings.
public struct ReplayConfiguration: Sendable {
    /// librdkafka properties (bootstrap.servers, security, ...).
    public var kafka: KafkaConfiguration
    public var topics = TopicNames()
    public var redisURL = "redis://127.0.0.1:6379"
    /// Prepended to every Redis key (isolation of tests and benchmark runs; default none).
    public var keyPrefix = ""
    public var cache = CacheKeys()
    public var from: ReplayStart = .earliest
    /// Stop each partition at its first record with a timestamp after this (ms).
    public var until: Int64?
    /// Input partitions to replay (nil: all).
    public var partitions: [Int32]?
    /// Rank every touched user afterwards (trigger "backfill", L1 with the 24 h TTL, response topic).
    public var rank = false
    /// T of those rankings (ms; default: now).
    public var rankAt: Int64?
    public var numItems = 50
    /// Ranking threads and users per embedding batch (with `rank`).
    public var threads = 2
    public var batchSize = 1000
    /// Read and rebuild, write nothing (no state, cache, DLQ or response records).
    public var dryRun = false
    public var allowModelMismatch = false
    /// Longest wait for the broker to acknowledge the outputs.
    public var ackTimeoutSeconds = 300

    public init(kafka: KafkaConfiguration) {
        self.kafka = kafka
    }
}

/// What a replay did.
public struct ReplaySummary: Sendable, Equatable {
    public var partitions = 0
    /// States read from the `user-state` topic first (the starting states of a replay from a time).
    public var startingStates = 0
    public var recordsRead = 0
    public var eventsApplied = 0
    public var unknownItems = 0
    /// Already in the user's state (the redelivery marks): not applied again.
    public var duplicates = 0
    /// Records before the first one at or after `--from` (skipped).
    public var skippedBeforeFrom = 0
    /// Of those, records no starting state had applied (their events are missing from the states).
    public var gapRecords = 0
    /// Records not read because a partition reached `--until`.
    public var afterUntil = 0
    public var deadLettered = 0
    /// Users whose state changed.
    public var users = 0
    public var statesWritten = 0
    /// The topic already holds exactly this state.
    public var statesUnchanged = 0
    /// The topic holds a newer state (the live worker applied more events): not written.
    public var statesNewerInTopic = 0
    /// Newer states re-produced after ours because the live worker wrote them while we wrote.
    public var reconciled = 0
    public var l4Written = 0
    public var l4Skipped = 0
    public var ranked = 0
    public var l1Written = 0
    public var l1Skipped = 0
    public var published = 0
    public var redisFailures = 0
    public var seconds = 0.0
    /// Reading and applying the log.
    public var applySeconds = 0.0
    public var dryRun = false

    public init() {}

    public var eventsPerSecond: Double { applySeconds > 0 ? Double(recordsRead) / applySeconds : 0 }

    public var lines: [String] {
        var out = [
            "\(dryRun ? "dry run: " : "")\(recordsRead) records read from \(partitions) partition(s) in \(String(format1: applySeconds)) s (\(Int(eventsPerSecond)) records/s)",
            "events applied \(eventsApplied) (\(unknownItems) for items not in the bundle), duplicates \(duplicates), dead-lettered \(deadLettered)",
        ]
        if skippedBeforeFrom > 0 || startingStates > 0 {
            out.append("starting states \(startingStates); skipped before --from \(skippedBeforeFrom) (\(gapRecords) of them never applied to a state)")
        }
        if afterUntil > 0 { out.append("stopped at --until: \(afterUntil) later records not read") }
        out.append("users \(users): states \(dryRun ? "to write" : "written") \(statesWritten), unchanged \(statesUnchanged), newer in the topic \(statesNewerInTopic), re-produced after a concurrent write \(reconciled)")
        out.append("L4 written \(l4Written), kept (newer) \(l4Skipped)\(redisFailures > 0 ? ", Redis failures \(redisFailures)" : "")")
        if ranked > 0 { out.append("ranked \(ranked): L1 written \(l1Written), kept (live worker newer) \(l1Skipped), published \(published)") }
        out.append("total \(String(format1: seconds)) s")
        return out
    }
}

extension String {
    init(format1 x: Double) {
        let r = (x * 10).rounded() / 10
        self = String(r)
    }
}
