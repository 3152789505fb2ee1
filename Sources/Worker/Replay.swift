import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import RedisClient
import Synchronization

/// Progress of a long job: a phase and how far it got.
public struct JobProgress: Sendable {
    public var phase: String
    public var done: Int
    public var total: Int
    public init(phase: String, done: Int, total: Int) {
        self.phase = phase
        self.done = done
        self.total = total
    }
}

/// `feedrank replay`: rebuilds user states from the `user-activity` log with the live worker's
/// own code path (`StateUpdater` with the records' (partition, offset) as source positions, the
/// same DLQ handling), then writes them to the `user-state` changelog (partition p = input
/// partition) and L4, and optionally ranks every touched user (trigger "backfill").
///
/// Starting states: `.earliest` rebuilds from empty states (the whole log is the truth — e.g.
/// after losing the changelog, or for a new model whose item embeddings change S); `.time(t)`
/// starts from the latest states in the changelog, as the live worker would restore them, and
/// applies the records from t on: what those states already hold is recognised by the
/// redelivery marks and not applied twice. Records before t that no state has applied are
/// counted as gaps (replay from earlier to include them).
///
/// Next to a running live worker: an own assignment consumer (no group, no commits); a state
/// is not written when the changelog already holds a newer one (further source offset), and
/// after writing, any newer state the live worker wrote meanwhile is re-produced after ours so
/// the last record per key — what compaction keeps — is the newest; L4 and L1 writes are
/// guarded (`GuardedCacheWriter`).
public final class ActivityReplay: Sendable {
    public let configuration: ReplayConfiguration
    public let catalog: RankingCatalog
    let logger: Logger

    public init(configuration: ReplayConfiguration, catalog: RankingCatalog,
                logger: Logger = Logger(label: "feedrank.replay")) {
        self.configuration = configuration
        self.catalog = catalog
        self.logger = logger
    }

    var manifest: Manifest { catalog.bundle.manifest }

    /// Consumer settings for the readers: large fetches; the configuration's properties win.
    var readerKafka: KafkaConfiguration {
        KafkaConfiguration(["fetch.max.bytes": "52428800", "max.partition.fetch.bytes": "16777216"])
            .merging(configuration.kafka.properties)
    }

    /// The rebuilt states and what the scan saw.
    struct Rebuild {
        var states: [Int32: [Int64: UserState]] = [:]
        var touched: [Int32: Set<Int64>] = [:]
    }

    public func run(progress: @escaping @Sendable (JobProgress) -> Void = { _ in }) async throws -> ReplaySummary {
        let clock = ContinuousClock.now
        let runStartedAt = Int64(Date().timeIntervalSince1970 * 1000)
        let config = configuration
        var summary = ReplaySummary()
        summary.dryRun = config.dryRun
        let producer = try KafkaProducer(configuration: config.kafka.merging(["message.max.bytes": "16000000"]),
                                         logger: Logger(label: "feedrank.kafka.producer"))
        defer { producer.close(timeout: .seconds(30)) }
        let redis = try RedisClient(url: config.redisURL, logger: Logger(label: "feedrank.redis"))
        let sink = OutputSink(producer: producer, redis: redis, metrics: WorkerMetrics(), logger: logger, redisBatch: 256)
        let cache = GuardedCacheWriter(redis: redis, keyPrefix: config.keyPrefix)
        let pending = PendingOutputs()

        let partitions = try checkTopics(producer)
        summary.partitions = partitions.count

        // 1. End offsets of the log, captured first: the replay stops there.
        let activity = partitions.map { TopicPartition(config.topics.activity, $0) }
        let marks = try PartitionScan.watermarks(kafka: readerKafka, activity)
        var ranges: [TopicPartition: PartitionScan.Range] = [:]
        switch config.from {
        case .earliest:
            for tp in activity {
                ranges[tp] = PartitionScan.Range(start: marks[tp]!.low, end: marks[tp]!.high)
                if marks[tp]!.low > 0 {
                    logger.warning("\(tp) starts at offset \(marks[tp]!.low): older records were deleted, the states are built from what remains")
                }
            }
        case .time(let from):
            // Kafka answers with the first offset at or after `from`; Tansu with the earliest
            // one, so older records are skipped while reading as well.
            let offsets = try PartitionScan.offsets(kafka: readerKafka, forTimes: Dictionary(uniqueKeysWithValues: activity.map { ($0, from) }))
            for tp in activity {
                let start = min(max(offsets[tp] ?? marks[tp]!.low, marks[tp]!.low), marks[tp]!.high)
                ranges[tp] = PartitionScan.Range(start: start, end: marks[tp]!.high)
            }
        }

        // 2. The changelog: starting states (replay from a time), what is newer there, and
        //    which model wrote it.
        let snapshot = try await StateSnapshot.read(kafka: readerKafka, topic: config.topics.state, partitions: partitions,
                                                    manifest: manifest, logger: logger) { done, total in
            progress(JobProgress(phase: "reading \(config.topics.state)", done: done, total: total))
        }
        var check = ModelVersionCheck(snapshot: snapshot)
        let sampleUsers = snapshot.partitions.values.flatMap(\.keys).sorted()
        await check.sampleL1(redis: redis, keyPrefix: config.keyPrefix, users: sampleUsers)
        logger.info("model versions of the existing states: \(check.description)")
        try check.enforce(bundleVersion: manifest.modelVersion, allowMismatch: config.allowModelMismatch, what: "replaying")

        // 3. Read and apply.
        var rebuild = Rebuild()
        if case .time = config.from {
            for (p, users) in snapshot.partitions { rebuild.states[p] = users.mapValues(\.state) }
            summary.startingStates = snapshot.userCount
        }
        let applyStarted = ContinuousClock.now
        try await apply(ranges: ranges, into: &rebuild, summary: &summary, sink: sink, pending: pending, progress: progress)
        summary.applySeconds = applyStarted.elapsedSeconds
        logger.info("log read", metadata: ["records": "\(summary.recordsRead)", "applied": "\(summary.eventsApplied)",
                                           "seconds": "\(summary.applySeconds)"])

        // 4. Outputs.
        let written = try await writeStates(rebuild, snapshot: snapshot, summary: &summary, sink: sink, cache: cache,
                                            pending: pending, progress: progress)
        try await pending.wait(timeout: .seconds(config.ackTimeoutSeconds))
        if !config.dryRun && !written.isEmpty {
            summary.reconciled = try await reconcile(written, from: snapshot.endOffsets, sink: sink, pending: pending)
        }
        if config.rank {
            try await rank(rebuild, runStartedAt: runStartedAt, summary: &summary, sink: sink, cache: cache,
                           pending: pending, progress: progress)
        }
        try await pending.wait(timeout: .seconds(config.ackTimeoutSeconds))
        try await producer.flush(timeout: .seconds(30))
        summary.seconds = clock.elapsedSeconds
        return summary
    }

    /// The input partitions to replay, after checking the topics (co-partitioning, existence).
    private func checkTopics(_ producer: KafkaProducer) throws -> [Int32] {
        let t = configuration.topics
        var needed = [t.activity, t.state]
        if !configuration.dryRun { needed.append(t.deadLetter) }
        if configuration.rank && !configuration.dryRun { needed.append(t.responses) }
        var counts: [String: Int] = [:]
        for topic in needed {
            do { counts[topic] = try producer.partitionCount(topic: topic) } catch let e as KafkaError where e.code == .unknownTopic {
                throw WorkerError("topic \(topic) does not exist")
            }
        }
        guard counts[t.activity] == counts[t.state] else {
            throw WorkerError("\(t.activity) has \(counts[t.activity]!) partitions and \(t.state) \(counts[t.state]!): they must be co-partitioned")
        }
        let n = Int32(counts[t.activity]!)
        let partitions = configuration.partitions ?? Array(0..<n)
        if let bad = partitions.first(where: { $0 < 0 || $0 >= n }) {
            throw WorkerError("partition \(bad) does not exist: \(t.activity) has partitions 0..<\(n)")
        }
        return Array(Set(partitions)).sorted()
    }

    /// Reads the ranges and applies every record like the live worker's lane does.
    private func apply(ranges: [TopicPartition: PartitionScan.Range], into rebuild: inout Rebuild,
                       summary: inout ReplaySummary, sink: OutputSink, pending: PendingOutputs,
                       progress: @escaping @Sendable (JobProgress) -> Void) async throws {
        let config = configuration
        let updater = StateUpdater(bundle: catalog.bundle)
        let total = ranges.values.reduce(0) { $0 + Int($1.end - $1.start) }
        var pastFrom = Set<Int32>()
        progress(JobProgress(phase: "replaying \(config.topics.activity)", done: 0, total: total))
        try await PartitionScan.read(kafka: readerKafka, ranges: ranges) { record, end in
            let p = record.partition
            if let until = config.until, let ts = record.timestamp ?? (try? ActivityEvent.parse(record.value))?.ts, ts > until {
                summary.afterUntil += Int(end - record.offset)
                return .stopPartition
            }
            summary.recordsRead += 1
            if summary.recordsRead & 4095 == 0 {
                progress(JobProgress(phase: "replaying \(config.topics.activity)", done: summary.recordsRead,
                                     total: max(total, summary.recordsRead)))
            }
            if case .time(let from) = config.from, !pastFrom.contains(p) {
                let event = try? ActivityEvent.parse(record.value)
                if let ts = record.timestamp ?? event?.ts, ts < from {
                    summary.skippedBeforeFrom += 1
                    if let event, record.keyString == String(event.userId) {
                        let applied = rebuild.states[p]?[event.userId].map {
                            StateUpdater.isDuplicate(event, of: $0, source: SourcePosition(partition: p, offset: record.offset))
                        } ?? false
                        if !applied { summary.gapRecords += 1 }
                    }
                    return .next
                }
                pastFrom.insert(p)
            }
            let event: ActivityEvent
            do {
                event = try ActivityEvent.parse(record.value)
            } catch {
                let message = (error as? ModelError)?.message ?? "\(error)"
                deadLetter(record, message: message, summary: &summary, sink: sink, pending: pending)
                return .next
            }
            guard record.keyString == String(event.userId) else {
                deadLetter(record, message: "record key \(record.keyString.map { "'\($0)'" } ?? "null") disagrees with user_id \(event.userId)",
                           summary: &summary, sink: sink, pending: pending)
                return .next
            }
            // Moved out of the dictionary so its arrays are updated in place.
            var state = rebuild.states[p, default: [:]].removeValue(forKey: event.userId)
            let outcome: StateUpdater.Outcome
            do {
                outcome = try updater.apply(event, to: &state, source: SourcePosition(partition: p, offset: record.offset))
            } catch {
                rebuild.states[p]![event.userId] = state
                let message = (error as? ModelError)?.message ?? "\(error)"
                deadLetter(record, message: message, summary: &summary, sink: sink, pending: pending)
                return .next
            }
            rebuild.states[p]![event.userId] = state
            switch outcome {
            case .duplicate:
                summary.duplicates += 1
            case .appliedUnknownItem, .applied:
                if outcome == .appliedUnknownItem { summary.unknownItems += 1 }
                summary.eventsApplied += 1
                rebuild.touched[p, default: []].insert(event.userId)
            }
            return .next
        }
        progress(JobProgress(phase: "replaying \(config.topics.activity)", done: summary.recordsRead, total: summary.recordsRead))
    }

    /// A record the worker would dead-letter goes to the DLQ unchanged, with the same headers.
    private func deadLetter(_ record: KafkaRecord, message: String, summary: inout ReplaySummary, sink: OutputSink,
                            pending: PendingOutputs) {
        summary.deadLettered += 1
        if summary.deadLettered <= 5 {
            logger.warning("dead-lettering \(record.topic)[\(record.partition)]@\(record.offset): \(message)")
        }
        guard !configuration.dryRun else { return }
        let headers = [
            KafkaHeader(key: "error", string: message),
            KafkaHeader(key: "source_topic", string: record.topic),
            KafkaHeader(key: "source_partition", string: String(record.partition)),
            KafkaHeader(key: "source_offset", string: String(record.offset)),
        ]
        pending.begin()
        sink.produce(OutgoingRecord(topic: configuration.topics.deadLetter, key: record.key, value: record.value,
                                    headers: headers)) { _ in pending.done() }
    }
}

extension ContinuousClock.Instant {
    var elapsedSeconds: Double {
        let d = (ContinuousClock.now - self).components
        return Double(d.seconds) + Double(d.attoseconds) / 1e18
    }
}
