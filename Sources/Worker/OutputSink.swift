import Dispatch
import KafkaClient
import Logging
import RedisClient
import Synchronization

/// Where the worker's outputs go, with the acknowledgement each input record waits for:
/// Kafka records are retried until the broker takes them (a broker outage pauses progress,
/// it never drops an output); Redis writes are best effort (the cache tiers are caches: a
/// failure is counted and logged, and the record still completes).
final class OutputSink: Sendable {
    let producer: KafkaProducer
    let redis: RedisClient
    let metrics: WorkerMetrics
    let logger: Logger
    private let redisBatch: Int
    private let pendingRedis = Mutex<(commands: [RedisCommand], completions: [@Sendable () -> Void])>(([], []))
    private let lastRedisFailureLog = Mutex<ContinuousClock.Instant?>(nil)

    init(producer: KafkaProducer, redis: RedisClient, metrics: WorkerMetrics, logger: Logger, redisBatch: Int) {
        self.producer = producer
        self.redis = redis
        self.metrics = metrics
        self.logger = logger
        self.redisBatch = max(1, redisBatch)
    }

    /// Produces `record`; `done` runs once the broker acknowledged it.
    func produce(_ record: OutgoingRecord, attempt: Int = 0, done: @escaping @Sendable (DeliveryReport) -> Void) {
        do {
            try producer.enqueue(record) { [self] result in
                switch result {
                case .success(let report): done(report)
                case .failure(let e):
                    retry(record, attempt: attempt + 1, after: e, done: done)
                }
            }
        } catch let e as KafkaError {
            retry(record, attempt: attempt + 1, after: e, done: done)
        } catch {
            retry(record, attempt: attempt + 1, after: KafkaError(code: .other(-1), message: "\(error)"), done: done)
        }
    }

    private func retry(_ record: OutgoingRecord, attempt: Int, after error: KafkaError,
                       done: @escaping @Sendable (DeliveryReport) -> Void) {
        if error.code == .messageTooLarge || error.code == .closed {
            // Retrying cannot help: say so loudly; the input stays uncommitted.
            logger.error("cannot produce to \(record.topic): \(error.message)")
            if error.code == .closed { return }
        }
        metrics.produceRetries.increment()
        if attempt == 1 || attempt % 50 == 0 {
            logger.warning("produce to \(record.topic) failed (\(error.message)); retrying (attempt \(attempt))")
        }
        let delayMs = min(5_000, error.code == .queueFull ? 1 : 50 * (1 << min(attempt, 6)))
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delayMs)) { [self] in
            produce(record, attempt: attempt, done: done)
        }
    }

    /// Queues Redis commands; `done` runs when their pipeline finished (successfully or not).
    func redisWrite(_ commands: [RedisCommand], done: @escaping @Sendable () -> Void) {
        let flushNow = pendingRedis.withLock { p -> Bool in
            p.commands += commands
            p.completions.append(done)
            return p.commands.count >= redisBatch
        }
        if flushNow { flushRedis() }
    }

    /// Sends whatever Redis commands are queued as one pipeline.
    func flushRedis() {
        let (commands, completions) = pendingRedis.withLock { p in
            defer { p = ([], []) }
            return (p.commands, p.completions)
        }
        guard !completions.isEmpty else { return }
        redis.submit(commands) { [self] result in
            switch result {
            case .success(let replies):
                let errors = replies.filter { if case .error = $0 { true } else { false } }
                if !errors.isEmpty {
                    metrics.redisFailures.increment(by: errors.count)
                    logRedisFailure("\(errors.count) Redis command(s) failed: \(errors[0])")
                }
            case .failure(let e):
                metrics.redisFailures.increment(by: commands.count)
                logRedisFailure("Redis write of \(commands.count) command(s) failed: \(e)")
            }
            for c in completions { c() }
        }
    }

    /// One Redis round trip, failures counted (returns nil on failure).
    func redisRead(_ commands: [RedisCommand]) async -> [RedisReply]? {
        do { return try await redis.pipeline(commands) } catch {
            metrics.redisFailures.increment(by: commands.count)
            logRedisFailure("Redis read failed: \(error)")
            return nil
        }
    }

    /// At most one log line per second for a dead Redis (the counter has every failure).
    private func logRedisFailure(_ message: String) {
        let now = ContinuousClock.now
        let log = lastRedisFailureLog.withLock { last -> Bool in
            if let l = last, now - l < .seconds(1) { return false }
            last = now
            return true
        }
        if log { logger.warning("\(message)") }
    }
}
