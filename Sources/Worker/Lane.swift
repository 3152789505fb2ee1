import Foundation
import KafkaClient
import Logging
import OrderedCollections
import Ranking
import RankingModel
import RedisClient

/// A processing lane: applies activity, answers requests and publishes event-driven re-ranks
/// for the input partitions routed to it, one record at a time (so a partition's records keep
/// their order), with its own ranker and encoder (per-thread scratch).
final class Lane: @unchecked Sendable {
    // Confined to the lane's task: ranker, encoder, pendingRefresh.
    let id: Int
    let inbox = LaneInbox()
    private let context: WorkerContext
    private let ranker: FeedRanker
    private let encoder: UserEncoder
    private let updater: StateUpdater
    private var pendingRefresh: [Int64: PendingRefresh] = [:]
    /// Users whose state changed in the current batch, in first-change order: their
    /// `user-state` record, L4 state and L2 embedding are written once per batch (the last
    /// state wins anyway), not once per event.
    private var changed: OrderedDictionary<Int64, ChangedState> = [:]

    struct ChangedState {
        var partition: Int32
        /// The last applied event's time (the embedding's `at`, as if written after that event).
        var lastEventTs: Int64
        /// The activity records whose commit waits for this state's writes.
        var attached: [(TopicPartition, Int64)]

        /// One more applied event of the user: its record waits for these writes too.
        mutating func attach(_ tp: TopicPartition, _ offset: Int64, ts: Int64) {
            attached.append((tp, offset))
            lastEventTs = ts
        }
    }

    struct PendingRefresh {
        var partition: Int32
        var due: ContinuousClock.Instant
        /// The activity records whose commit waits for this re-rank.
        var attached: [(TopicPartition, Int64)]
        /// The earliest triggering event's time (for feed_freshness_seconds).
        var firstEventTs: Int64
    }

    /// Records taken per batch: a changed user's state is written once per batch. 256 rather
    /// than 64: a median 23.8k vs 18.7k activity events/s over six interleaved pairs (a
    /// 100,000-event flood; ~12 vs ~9 events per user and batch in the bench world); a request
    /// waits behind at most one batch (~10 ms of activity).
    static let batchSize = 256

    init(id: Int, context: WorkerContext) {
        self.id = id
        self.context = context
        self.ranker = FeedRanker(catalog: context.catalog)
        self.encoder = UserEncoder(bundle: context.catalog.bundle)
        self.updater = StateUpdater(bundle: context.catalog.bundle)
    }

    func run() async {
        while var batch = await inbox.nextBatch(max: Self.batchSize) {
            // One MGET for the L1 entries the batch's requests may be answered from.
            let l1 = await prefetchL1(batch)
            // Taken out one by one (`LaneBatch.next` moves them): iterating would copy every
            // record once more.
            while let (work, request) = batch.next() {
                switch consume work {
                case .record(let record, let receivedAt):
                    if request {
                        answerRequest(record, receivedAt: receivedAt, l1: l1)
                    } else {
                        applyActivity(record)
                    }
                case .tick:
                    publishDueRefreshes(only: nil, now: .now)
                case .flushPartitions(let partitions, let done):
                    writeChangedStates()
                    publishDueRefreshes(only: partitions, now: nil)
                    done()
                }
            }
            writeChangedStates()
            context.sink.flushRedis()
        }
        // Closed: publish what is still pending, so no re-rank is lost on shutdown.
        writeChangedStates()
        publishDueRefreshes(only: nil, now: nil)
        context.sink.flushRedis()
    }

    // MARK: activity

    /// A record over the size limit is bad input whatever it holds.
    private func rejectOversize(_ record: KafkaRecord) -> Bool {
        let limit = context.config.maxRecordBytes
        guard record.value.count > limit else { return false }
        let message = "\(record.topic) record of \(record.value.count) bytes exceeds the \(limit)-byte limit"
        var reply: (String, Int64?, String?)?
        if record.topic == context.config.topics.requests {
            do {
                let r = try RankingRequest.parse(record.value)
                reply = (r.requestId, r.userId, r.replyTo)
            } catch {
                reply = error.requestId.map { ($0, error.userId, error.replyTo) }
            }
        }
        context.deadLetter(record, reason: "too_large", message: message, errorResponse: reply)
        return true
    }

    private func applyActivity(_ record: KafkaRecord) {
        let tp = record.topicPartition
        if rejectOversize(record) { return }
        let event: ActivityEvent
        do {
            event = try ActivityEvent.parse(record.value)
        } catch {
            context.deadLetter(record, reason: "invalid_record", message: error.message, errorResponse: nil)
            return
        }
        guard record.keyString == String(event.userId) else {
            context.deadLetter(record, reason: "key_mismatch",
                               message: "record key \(record.keyString.map { "'\($0)'" } ?? "null") disagrees with user_id \(event.userId)",
                               errorResponse: nil)
            return
        }
        let source = SourcePosition(partition: record.partition, offset: record.offset)
        let outcome = context.store.update(record.partition, event.userId) { rec -> Result<(StateUpdater.Outcome, UserRecord), ModelError> in
            do {
                let o = try updater.apply(event, to: &rec.state, source: source)
                return .success((o, rec))
            } catch let e as ModelError {
                return .failure(e)
            } catch {
                return .failure(ModelError(.invalidEvent, "\(error)"))
            }
        }
        // Partition revoked meanwhile: leave the record to the next owner.
        guard let outcome else { context.tracker.abandon(tp, record.offset); return }
        let (result, rec): (StateUpdater.Outcome, UserRecord)
        switch outcome {
        case .failure(let e):
            context.deadLetter(record, reason: "invalid_record", message: e.message, errorResponse: nil)
            return
        case .success(let v):
            (result, rec) = v
        }
        switch result {
        case .duplicate:
            context.metrics.eventsDuplicate.increment()
            context.tracker.complete(tp, record.offset)
            return
        case .appliedUnknownItem:
            context.metrics.eventsUnknownItem.increment()
        case .applied:
            break
        }
        context.metrics.eventsApplied.increment()
        guard rec.state != nil else { context.tracker.complete(tp, record.offset); return }
        // One output: the user's state writes at the end of the batch (`writeChangedStates`).
        context.tracker.addOutputs(tp, record.offset, 1)
        changed[event.userId, default: ChangedState(partition: record.partition, lastEventTs: event.ts, attached: [])]
            .attach(tp, record.offset, ts: event.ts)
        if event.action.triggersRefresh {
            context.tracker.addOutputs(tp, record.offset, 1)
            let window = Duration.milliseconds(context.config.refreshWindowMs)
            if var p = pendingRefresh[event.userId] {
                p.attached.append((tp, record.offset))
                p.firstEventTs = min(p.firstEventTs, event.ts)
                pendingRefresh[event.userId] = p
            } else {
                pendingRefresh[event.userId] = PendingRefresh(partition: record.partition, due: .now + window,
                                                              attached: [(tp, record.offset)], firstEventTs: event.ts)
            }
        }
        context.tracker.complete(tp, record.offset)
    }

    /// Writes the state of every user changed since the last call: the user-state changelog
    /// record (partition p, like the input), the L4 state and the L2 embedding (the tower runs
    /// once per user here, on the final state). The attached activity records complete when
    /// both the record and the Redis writes are acknowledged.
    private func writeChangedStates() {
        guard !changed.isEmpty else { return }
        let cache = context.config.cache
        // The model_version header tells replay and batch which model wrote the state.
        let headers = [KafkaHeader(key: ModelVersionCheck.header, string: context.modelVersion)]
        for (user, c) in changed {
            let attached = c.attached
            // Revoked meanwhile (shutdown): the state was not written, so the records stay
            // uncommitted and the next owner applies them again on its restored state.
            guard let rec = context.store.record(c.partition, user), let state = rec.state else {
                for (tp, o) in attached { context.tracker.abandon(tp, o) }
                continue
            }
            let stateJSON = state.jsonBytes()
            let u = encoder.embed(state: state, at: c.lastEventTs, device: rec.lastDevice)
            let outputs = Countdown(2) { [context] in
                context.tracker.complete(attached)
            }
            context.sink.produce(OutgoingRecord(topic: context.config.topics.state, partition: c.partition,
                                                key: String(user), value: stateJSON, headers: headers)) { _ in
                outputs.done()
            }
            context.sink.redisWrite([
                .set(CacheKeys.features(user), stateJSON, expireSeconds: cache.featuresTTL),
                .set(CacheKeys.userEmbedding(user), CacheKeys.floatBytes(u), expireSeconds: cache.userEmbeddingTTL),
            ]) { outputs.done() }
        }
        context.metrics.stateWrites.increment(by: changed.count)
        changed.removeAll(keepingCapacity: true)
    }

    /// Publishes the event-driven re-ranks that are due (`now` nil: all of them), optionally only
    /// those of some input partitions.
    private func publishDueRefreshes(only partitions: Set<Int32>?, now: ContinuousClock.Instant?) {
        guard !pendingRefresh.isEmpty else { return }
        let due = pendingRefresh.filter { (_, p) in
            (partitions?.contains(p.partition) ?? true) && (now.map { p.due <= $0 } ?? true)
        }
        for (user, p) in due.sorted(by: { $0.key < $1.key }) {
            pendingRefresh[user] = nil
            // Revoked: the next owner has the state; its records stay uncommitted here.
            guard let rec = context.store.record(p.partition, user) else { continue }
            let atMs = Int64(Date().timeIntervalSince1970 * 1000)
            let started = ContinuousClock.now
            let out = ranker.rank(RankingInput(userId: user, state: rec.state, at: atMs, device: rec.lastDevice,
                                               numItems: context.config.refreshNumItems))
            let response = context.response(for: out, requestId: nil, userId: user, trigger: .activity,
                                             started: started, at: atMs)
            let bytes = response.jsonBytes()
            context.metrics.refreshes.increment()
            context.recordRanking(out, response: response, cacheHit: false)
            let attached = p.attached
            let firstTs = p.firstEventTs
            let outputs = Countdown(2) { [context] in
                context.tracker.complete(attached)
                let ageMs = max(0, Int64(Date().timeIntervalSince1970 * 1000) - firstTs)
                context.metrics.feedFreshness.recordNanoseconds(ageMs * 1_000_000)
            }
            context.sink.produce(OutgoingRecord(topic: context.config.topics.responses, key: String(user), value: bytes)) { _ in
                outputs.done()
            }
            context.sink.redisWrite([.set(CacheKeys.ranking(user), bytes, expireSeconds: context.config.cache.rankingTTL)]) {
                outputs.done()
            }
        }
    }

    // MARK: requests

    private func prefetchL1(_ batch: LaneBatch) async -> [Int64: [UInt8]] {
        var users: [Int64] = []
        for i in batch.requests {
            guard case .record(let r, _) = batch.items[i], r.value.count <= context.config.maxRecordBytes else { continue }
            if let req = try? RankingRequest.parse(r.value), !req.fresh { users.append(req.userId) }
        }
        guard !users.isEmpty else { return [:] }
        let unique = Array(Set(users))
        guard let replies = await context.sink.redisRead([.mget(unique.map(CacheKeys.ranking))]),
              let values = try? replies[0].array() else { return [:] }
        var out: [Int64: [UInt8]] = [:]
        for (u, v) in zip(unique, values) { if let b = try? v.bytes() { out[u] = b } }
        return out
    }

    private func answerRequest(_ record: KafkaRecord, receivedAt: ContinuousClock.Instant, l1: [Int64: [UInt8]]) {
        let tp = record.topicPartition
        if rejectOversize(record) { return }
        let request: RankingRequest
        do {
            request = try RankingRequest.parse(record.value)
        } catch {
            context.metrics.rankingErrors.increment()
            context.deadLetter(record, reason: "invalid_record", message: error.message,
                               errorResponse: error.requestId.map { ($0, error.userId, error.replyTo) })
            return
        }
        guard record.keyString == String(request.userId) else {
            context.metrics.rankingErrors.increment()
            let msg = "record key \(record.keyString.map { "'\($0)'" } ?? "null") disagrees with user_id \(request.userId)"
            context.deadLetter(record, reason: "key_mismatch", message: msg,
                               errorResponse: (request.requestId, request.userId, request.replyTo))
            return
        }
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        let at = request.contextTs ?? record.timestamp ?? nowMs
        let rec = context.store.update(record.partition, request.userId) { rec -> UserRecord in
            if let d = request.device { rec.lastDevice = d }
            return rec
        }
        guard let rec else { context.tracker.abandon(tp, record.offset); return }
        context.metrics.rankingRequests.increment()
        let replyTopic = request.replyTo ?? context.config.topics.responses
        let key = String(request.userId)

        if !request.fresh, let cached = l1[request.userId], let entry = try? RankingResponse.parse(cached),
           var answer = L1Policy.answer(cached: entry, request: request, state: rec.state, at: at,
                                        modelVersion: context.modelVersion,
                                        impressionWindowMs: context.catalog.rules.impressionWindowMs) {
            answer.latencyMs = receivedAt.elapsedMilliseconds
            context.metrics.cacheHit("l1")
            context.metrics.rankingLatency.recordNanoseconds(Int64(answer.latencyMs * 1e6))
            context.logRanking(answer, numItems: request.numItems, cacheHit: true)
            context.tracker.addOutputs(tp, record.offset, 1)
            context.sink.produce(OutgoingRecord(topic: replyTopic, key: key, value: answer.jsonBytes())) { [context] _ in
                context.tracker.complete(tp, record.offset)
            }
            context.tracker.complete(tp, record.offset)
            return
        }
        if !request.fresh { context.metrics.cacheMiss("l1") }

        let out = ranker.rank(RankingInput(userId: request.userId, state: rec.state, at: at, device: request.device,
                                           numItems: request.numItems))
        let response = context.response(for: out, requestId: request.requestId, userId: request.userId,
                                        trigger: .request, started: receivedAt, at: at)
        let bytes = response.jsonBytes()
        context.metrics.rankingLatency.recordNanoseconds(Int64(response.latencyMs * 1e6))
        context.recordRanking(out, response: response, cacheHit: false)
        context.tracker.addOutputs(tp, record.offset, 2)
        context.sink.produce(OutgoingRecord(topic: replyTopic, key: key, value: bytes)) { [context] _ in
            context.tracker.complete(tp, record.offset)
        }
        context.sink.redisWrite([.set(CacheKeys.ranking(request.userId), bytes, expireSeconds: context.config.cache.rankingTTL)]) { [context] in
            context.tracker.complete(tp, record.offset)
        }
        context.tracker.complete(tp, record.offset)
    }
}

/// Calls `body` after `done()` was called `count` times (from any thread).
final class Countdown: @unchecked Sendable {
    private let lock = NSLock()
    private var remaining: Int
    private let body: @Sendable () -> Void

    init(_ count: Int, _ body: @escaping @Sendable () -> Void) {
        remaining = count
        self.body = body
    }

    func done() {
        lock.lock()
        remaining -= 1
        let fire = remaining == 0
        lock.unlock()
        if fire { body() }
    }
}

extension ContinuousClock.Instant {
    var elapsedMilliseconds: Double {
        let d = (ContinuousClock.now - self).components
        return Double(d.seconds) * 1000 + Double(d.attoseconds) / 1e15
    }
}
