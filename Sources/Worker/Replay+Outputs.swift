import Foundation
import KafkaClient
import Ranking
import RankingModel
import Synchronization

extension ActivityReplay {
    /// The model_version header every state record written by FeedRank carries.
    var stateHeaders: [KafkaHeader] { [KafkaHeader(key: ModelVersionCheck.header, string: manifest.modelVersion)] }

    /// Writes the touched users' states to the changelog (partition p, key user id) and L4,
    /// except where the changelog already holds a newer state or exactly this one. Returns
    /// the source offsets written, per partition and user.
    func writeStates(_ rebuild: Rebuild, snapshot: StateSnapshot, summary: inout ReplaySummary, sink: OutputSink,
                     cache: GuardedCacheWriter, pending: PendingOutputs,
                     progress: @escaping @Sendable (JobProgress) -> Void) async throws -> [Int32: [Int64: Int64]] {
        let config = configuration
        let total = rebuild.touched.values.reduce(0) { $0 + $1.count }
        var written: [Int32: [Int64: Int64]] = [:]
        var l4: [GuardedCacheWriter.L4Write] = []
        var done = 0
        func flushL4() async {
            guard !l4.isEmpty else { return }
            defer { l4.removeAll(keepingCapacity: true) }
            if config.dryRun { summary.l4Written += l4.count; return }
            do {
                let o = try await cache.write(l4: l4)
                summary.l4Written += o.written
                summary.l4Skipped += o.skipped
            } catch {
                summary.redisFailures += l4.count
                if summary.redisFailures == l4.count { logger.warning("L4 writes failed (the changelog is the state of record): \(error)") }
            }
        }
        progress(JobProgress(phase: "writing states", done: 0, total: total))
        for p in rebuild.touched.keys.sorted() {
            for user in rebuild.touched[p]!.sorted() {
                try Task.checkCancellation()
                done += 1
                guard let state = rebuild.states[p]?[user] else { continue }
                summary.users += 1
                if let existing = snapshot.entry(p, user)?.state {
                    if let a = existing.source, let b = state.source, a.partition == b.partition, a.offset > b.offset {
                        summary.statesNewerInTopic += 1
                        continue
                    }
                    if existing == state && snapshot.entry(p, user)?.modelVersion == manifest.modelVersion {
                        summary.statesUnchanged += 1
                        l4.append(.init(user: user, value: state.jsonBytes(), ttl: config.cache.featuresTTL,
                                        source: state.source.map { ($0.partition, $0.offset) }))
                        continue
                    }
                }
                let bytes = state.jsonBytes()
                summary.statesWritten += 1
                if !config.dryRun {
                    pending.begin()
                    sink.produce(OutgoingRecord(topic: config.topics.state, partition: p, key: String(user), value: bytes,
                                                headers: stateHeaders)) { _ in pending.done() }
                    written[p, default: [:]][user] = state.source?.offset ?? -1
                }
                l4.append(.init(user: user, value: bytes, ttl: config.cache.featuresTTL,
                                source: state.source.map { ($0.partition, $0.offset) }))
                if l4.count >= 1000 {
                    await flushL4()
                    progress(JobProgress(phase: "writing states", done: done, total: total))
                }
            }
        }
        await flushL4()
        progress(JobProgress(phase: "writing states", done: total, total: total))
        return written
    }

    /// Compaction keeps the last record per key. If the live worker wrote a newer state of a
    /// user (further source offset) between our snapshot and our write, ours now comes after
    /// it: re-produce the newest one so it is last again. Repeats (bounded) until the changelog
    /// from the snapshot's end on has no such user. Returns how many records were re-produced.
    func reconcile(_ written: [Int32: [Int64: Int64]], from snapshotEnds: [Int32: Int64], sink: OutputSink,
                   pending: PendingOutputs) async throws -> Int {
        let topic = configuration.topics.state
        var reproduced = 0
        for round in 1...5 {
            let tps = written.keys.sorted().map { TopicPartition(topic, $0) }
            let marks = try PartitionScan.watermarks(kafka: readerKafka, tps)
            var ranges: [TopicPartition: PartitionScan.Range] = [:]
            for tp in tps { ranges[tp] = PartitionScan.Range(start: snapshotEnds[tp.partition] ?? 0, end: marks[tp]!.high) }
            struct Newest { var offset: Int64; var record: KafkaRecord; var isLast: Bool }
            var newest: [Int32: [Int64: Newest]] = [:]
            try await PartitionScan.read(kafka: readerKafka, ranges: ranges) { record, _ in
                guard let key = record.keyString, let user = Int64(key), written[record.partition]?[user] != nil,
                      !record.value.isEmpty, let state = try? UserState.decode(record.value) else { return .next }
                let offset = state.source.map { $0.partition == record.partition ? $0.offset : -1 } ?? -1
                if let n = newest[record.partition]?[user], n.offset > offset {
                    newest[record.partition]![user]!.isLast = false
                } else {
                    newest[record.partition, default: [:]][user] = Newest(offset: offset, record: record, isLast: true)
                }
                return .next
            }
            let stale = newest.flatMap { p, users in users.values.filter { !$0.isLast }.map { ($0.record, p) } }
            if stale.isEmpty { break }
            logger.info("re-producing \(stale.count) newer states the live worker wrote while the replay wrote (round \(round))")
            for (record, p) in stale {
                pending.begin()
                sink.produce(OutgoingRecord(topic: topic, partition: p, key: record.key, value: record.value,
                                            headers: record.headers)) { _ in pending.done() }
            }
            reproduced += stale.count
            try await pending.wait(timeout: .seconds(configuration.ackTimeoutSeconds))
        }
        return reproduced
    }

    /// Ranks every touched user (trigger "backfill") into L1 (24 h TTL, guarded) and the
    /// response topic.
    func rank(_ rebuild: Rebuild, runStartedAt: Int64, summary: inout ReplaySummary, sink: OutputSink,
              cache: GuardedCacheWriter, pending: PendingOutputs,
              progress: @escaping @Sendable (JobProgress) -> Void) async throws {
        let config = configuration
        var jobs: [RankJob] = []
        for p in rebuild.touched.keys.sorted() {
            for user in rebuild.touched[p]!.sorted() { jobs.append(RankJob(userId: user, state: rebuild.states[p]?[user])) }
        }
        let at = config.rankAt ?? Int64(Date().timeIntervalSince1970 * 1000)
        let ranker = BatchRanker(catalog: catalog, threads: config.threads, batchSize: config.batchSize, numItems: config.numItems)
        struct Counts { var ranked = 0, l1Written = 0, l1Skipped = 0, published = 0, redisFailures = 0 }
        let counts = Locked(Counts())
        let stop = SharedCounter()
        let total = jobs.count
        let ttl = config.cache.backfillRankingTTL
        let topic = config.topics.responses
        let logger = self.logger
        progress(JobProgress(phase: "ranking", done: 0, total: total))
        _ = await withTaskCancellationHandler {
            await ranker.run(jobs, at: at, deliver: { batch, release in
                var c = Counts(ranked: batch.users.count)
                if config.dryRun {
                    c.l1Written = batch.users.count
                } else {
                    let writes = zip(batch.users, batch.responses).map {
                        GuardedCacheWriter.L1Write(user: $0, value: $1, ttl: ttl, runStartedAt: runStartedAt)
                    }
                    do {
                        let o = try cache.writeSync(l1: writes)
                        c.l1Written = o.written
                        c.l1Skipped = o.skipped
                    } catch {
                        c.redisFailures = writes.count
                        logger.warning("L1 writes of \(writes.count) backfill rankings failed: \(error)")
                    }
                    for (user, bytes) in zip(batch.users, batch.responses) {
                        pending.begin()
                        sink.produce(OutgoingRecord(topic: topic, key: String(user), value: bytes)) { _ in pending.done() }
                    }
                    c.published = batch.users.count
                }
                let ranked = counts.withLock { s in
                    s.ranked += c.ranked; s.l1Written += c.l1Written; s.l1Skipped += c.l1Skipped
                    s.published += c.published; s.redisFailures += c.redisFailures
                    return s.ranked
                }
                progress(JobProgress(phase: "ranking", done: ranked, total: total))
                release()
            }, shouldStop: { stop.current != 0 })
        } onCancel: {
            stop.store(1)
        }
        try Task.checkCancellation()
        let c = counts.withLock { $0 }
        summary.ranked = c.ranked
        summary.l1Written = c.l1Written
        summary.l1Skipped = c.l1Skipped
        summary.published = c.published
        summary.redisFailures += c.redisFailures
    }
}
