import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import RedisClient
import Synchronization

/// `feedrank batch`: the daily precompute of every active user's feed into L1.
///
/// States come from the `user-state` changelog (the state of record; every partition read to
/// the end offsets captured at start, latest state per user by the restore rule) — or, without
/// a broker, from L4 (`features:user:*`, which only holds users active in its 30 min TTL). A
/// user is active when their state's t_last is within `activeDays` before T. Active users are
/// ranked in ascending id order, in batches (embeddings by one sgemm per layer) on `threads`
/// threads, and written to L1 with the 24 h backfill TTL through pipelined, guarded writes
/// (`GuardedCacheWriter`: a ranking the live worker made during the run is kept); with
/// `publish` also to the response topic. After every contiguous run of finished batches the
/// checkpoint records the last user done, so an interrupted run resumes after it at the same T.
public final class BatchPrecompute: Sendable {
    public let configuration: BatchConfiguration
    public let catalog: RankingCatalog
    let logger: Logger

    public init(configuration: BatchConfiguration, catalog: RankingCatalog,
                logger: Logger = Logger(label: "feedrank.batch")) {
        self.configuration = configuration
        self.catalog = catalog
        self.logger = logger
    }

    var manifest: Manifest { catalog.bundle.manifest }

    struct LoadedStates {
        var states: [Int64: UserState] = [:]
        var source = ""
        var check = ModelVersionCheck()
    }

    public func run(progress: @escaping @Sendable (JobProgress) -> Void = { _ in }) async throws -> BatchSummary {
        let clock = ContinuousClock.now
        let config = configuration
        var summary = BatchSummary()
        summary.threads = config.threads
        let redis = try RedisClient(url: config.redisURL, logger: Logger(label: "feedrank.redis"))
        do { _ = try await redis.pipeline([RedisCommand("PING", [])]) } catch {
            throw WorkerError("Redis \(redis.configuration.redactedURL): \(error)")
        }
        let cache = GuardedCacheWriter(redis: redis, keyPrefix: config.keyPrefix)
        let store: CheckpointStore = config.checkpointPath.map { .file($0) } ?? .redis(redis, key: config.checkpointKey)
        let producer = try config.publish ? makeProducer() : nil
        defer { producer?.close(timeout: .seconds(30)) }

        let loadStarted = ContinuousClock.now
        var loaded = try await loadStates(redis: redis, progress: progress)
        summary.loadSeconds = loadStarted.elapsedSeconds
        summary.source = loaded.source
        summary.statesRead = loaded.states.count
        await loaded.check.sampleL1(redis: redis, keyPrefix: config.keyPrefix, users: loaded.states.keys.sorted())
        logger.info("model versions of the existing states: \(loaded.check.description)")
        try loaded.check.enforce(bundleVersion: manifest.modelVersion, allowMismatch: config.allowModelMismatch,
                                 what: "precomputing feeds")

        // The checkpoint: resume an unfinished run of this model and window, or start one.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var checkpoint: BatchCheckpoint
        if !config.restart, let existing = try store.load(),
           existing.resumable(modelVersion: manifest.modelVersion, activeDays: config.activeDays, now: now) {
            checkpoint = existing
            summary.resumed = true
            if let at = config.at, at != existing.at {
                logger.warning("resuming run \(existing.runId) at its T=\(existing.at), not --at \(at) (pass --restart to start over)")
            }
        } else {
            checkpoint = BatchCheckpoint(runId: String(UInt64.random(in: 0...UInt64.max), radix: 36), startedAt: now,
                                         at: config.at ?? now, modelVersion: manifest.modelVersion,
                                         activeDays: config.activeDays, totalUsers: 0)
        }
        summary.at = checkpoint.at
        summary.runId = checkpoint.runId
        let active = activeUsers(loaded.states, at: checkpoint.at)
        summary.activeUsers = active.count
        let firstRemaining = checkpoint.lastUserId.map { last in active.partitionPoint { $0 > last } } ?? 0
        let jobs = active[firstRemaining...].map { RankJob(userId: $0, state: loaded.states[$0]) }
        loaded.states = [:]
        summary.alreadyDone = firstRemaining
        checkpoint.totalUsers = active.count
        checkpoint.doneUsers = firstRemaining
        checkpoint.updatedAt = now
        try store.save(checkpoint)
        logger.info("batch run", metadata: [
            "run_id": "\(checkpoint.runId)", "at": "\(checkpoint.at)", "active": "\(active.count)",
            "to_rank": "\(jobs.count)", "resumed": "\(summary.resumed)", "checkpoint": "\(store.description)",
        ])

        let rankStarted = ContinuousClock.now
        let outcome = try await rankAll(jobs, checkpoint: checkpoint, store: store, cache: cache, producer: producer,
                                        total: active.count, progress: progress)
        summary.rankSeconds = rankStarted.elapsedSeconds
        summary.ranked = outcome.ranked
        summary.l1Written = outcome.l1Written
        summary.l1Skipped = outcome.l1Skipped
        summary.published = outcome.published
        summary.short = outcome.short
        summary.boundHits = outcome.boundHits
        summary.coldStarts = outcome.coldStarts
        summary.completed = outcome.completed
        summary.seconds = clock.elapsedSeconds
        if let fatal = outcome.fatal { throw fatal }
        return summary
    }

    private func makeProducer() throws -> KafkaProducer {
        guard let kafka = configuration.kafka else { throw WorkerError("--publish needs --brokers") }
        let producer = try KafkaProducer(configuration: kafka, logger: Logger(label: "feedrank.kafka.producer"))
        do { _ = try producer.partitionCount(topic: configuration.topics.responses) } catch let e as KafkaError where e.code == .unknownTopic {
            throw WorkerError("topic \(configuration.topics.responses) does not exist")
        }
        return producer
    }

    /// Active user ids, ascending: t_last within `activeDays` before `at`.
    func activeUsers(_ states: [Int64: UserState], at: Int64) -> [Int64] {
        let from = at - Int64(configuration.activeDays * 86_400_000)
        var ids = states.compactMap { $0.value.tLast >= from ? $0.key : nil }
        ids.sort()
        if let limit = configuration.limit, ids.count > limit { ids = Array(ids.prefix(limit)) }
        return ids
    }

    struct RankOutcome {
        var ranked = 0, l1Written = 0, l1Skipped = 0, published = 0, short = 0, boundHits = 0, coldStarts = 0
        var completed = false
        var fatal: WorkerError?
    }

    /// Ranks the jobs, writes L1 (retrying a failing Redis for a while), publishes, and moves
    /// the checkpoint over contiguous finished batches.
    private func rankAll(_ jobs: [RankJob], checkpoint: BatchCheckpoint, store: CheckpointStore, cache: GuardedCacheWriter,
                         producer: KafkaProducer?, total: Int,
                         progress: @escaping @Sendable (JobProgress) -> Void) async throws -> RankOutcome {
        let config = configuration
        let ranker = BatchRanker(catalog: catalog, threads: config.threads, batchSize: config.batchSize, numItems: config.numItems)
        let batches = ranker.batchCount(jobs.count)
        struct Shared { var outcome = RankOutcome(); var completion = BatchCompletion(); var checkpoint: BatchCheckpoint }
        let shared = Locked(Shared(checkpoint: checkpoint))
        let stop = SharedCounter()
        let pending = PendingOutputs()
        let logger = self.logger
        let alreadyDone = checkpoint.doneUsers
        let sink = producer.map { OutputSink(producer: $0, redis: cache.redis, metrics: WorkerMetrics(), logger: logger, redisBatch: 256) }
        let ttl = config.cache.backfillRankingTTL
        let startedAt = checkpoint.startedAt

        @Sendable func finished(_ index: Int) {
            shared.withLock { s in
                guard let n = s.completion.finish(index) else { return }
                let done = min(n * config.batchSize, jobs.count)
                s.checkpoint.lastUserId = jobs[done - 1].userId
                s.checkpoint.doneUsers = alreadyDone + done
                s.checkpoint.updatedAt = Int64(Date().timeIntervalSince1970 * 1000)
                do { try store.save(s.checkpoint) } catch { logger.error("saving the checkpoint failed: \(error)") }
            }
        }

        progress(JobProgress(phase: "ranking", done: alreadyDone, total: total))
        _ = await withTaskCancellationHandler {
            await ranker.run(jobs, at: checkpoint.at, deliver: { batch, release in
                let writes = zip(batch.users, batch.responses).map {
                    GuardedCacheWriter.L1Write(user: $0, value: $1, ttl: ttl, runStartedAt: startedAt)
                }
                var written: GuardedCacheWriter.Outcome?
                for attempt in 1...8 {
                    do { written = try cache.writeSync(l1: writes); break } catch {
                        logger.warning("L1 writes of batch \(batch.index) failed (attempt \(attempt)): \(error)")
                        if attempt == 8 || stop.current != 0 {
                            shared.withLock { $0.outcome.fatal = $0.outcome.fatal ?? WorkerError("Redis keeps failing: \(error)") }
                            stop.store(1)
                            break
                        }
                        Thread.sleep(forTimeInterval: min(5, 0.25 * Double(1 << attempt)))
                    }
                }
                guard let written else { release(); return }
                let ranked = shared.withLock { s in
                    s.outcome.ranked += batch.users.count
                    s.outcome.l1Written += written.written
                    s.outcome.l1Skipped += written.skipped
                    s.outcome.short += batch.short
                    s.outcome.boundHits += batch.boundHits
                    s.outcome.coldStarts += batch.coldStarts
                    return s.outcome.ranked
                }
                if let sink {
                    let index = batch.index
                    let acks = Countdown(batch.users.count) { finished(index) }
                    pending.begin(batch.users.count)
                    for (user, bytes) in zip(batch.users, batch.responses) {
                        sink.produce(OutgoingRecord(topic: config.topics.responses, key: String(user), value: bytes)) { _ in
                            acks.done()
                            pending.done()
                        }
                    }
                    shared.withLock { $0.outcome.published += batch.users.count }
                } else {
                    finished(batch.index)
                }
                progress(JobProgress(phase: "ranking", done: alreadyDone + ranked, total: total))
                release()
            }, shouldStop: { stop.current != 0 })
        } onCancel: {
            stop.store(1)
        }
        if producer != nil { try await pending.wait(timeout: .seconds(config.ackTimeoutSeconds)) }
        return shared.withLock { s in
            var o = s.outcome
            o.completed = s.completion.nextUnfinished == batches && o.fatal == nil
            if o.completed {
                s.checkpoint.completed = true
                s.checkpoint.updatedAt = Int64(Date().timeIntervalSince1970 * 1000)
                do { try store.save(s.checkpoint) } catch { logger.error("saving the final checkpoint failed: \(error)") }
            }
            return o
        }
    }
}

extension Array where Element == Int64 {
    /// The first index whose element satisfies `belongs` (the array is partitioned by it).
    func partitionPoint(_ belongs: (Int64) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if belongs(self[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
