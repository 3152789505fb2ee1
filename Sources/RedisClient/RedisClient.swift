import Dispatch
import Logging
import Synchronization

/// A Redis client over one hiredis connection: pipelined, binary-safe, with timeouts and
/// reconnection with exponential backoff. Blocking hiredis calls run on the client's own
/// serial queue, never on Swift's cooperative thread pool.
///
/// When the server goes away, calls fail fast with a retryable `RedisError` (`.connection`
/// on the call that noticed, `.unavailable` while backing off); the next call after the
/// backoff reconnects. Callers decide what a failed write means (FeedRank counts and logs it:
/// Redis is a cache, the state of record is Kafka).
public final class RedisClient: Sendable {
    private struct State {
        var connection: RedisConnection?
        var failures = 0
        var nextAttempt: ContinuousClock.Instant?
        var lastError: RedisError?
    }

    public let configuration: RedisConfiguration
    private let queue: DispatchQueue
    // Only touched on `queue`; the Mutex makes `isConnected` readable from anywhere.
    private let state = Mutex(State())
    private let logger: Logger

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "feedrank.redis")) {
        self.configuration = configuration
        self.queue = DispatchQueue(label: "feedrank.redis.\(configuration.host):\(configuration.port)")
        self.logger = logger
        queue.setSpecific(key: Self.onQueueKey, value: ObjectIdentifier(self))
    }

    public convenience init(url: String, logger: Logger = Logger(label: "feedrank.redis")) throws {
        self.init(configuration: try RedisConfiguration(url: url), logger: logger)
    }

    /// True after the last call reached the server.
    public var isConnected: Bool { state.withLock { $0.connection != nil } }
    public var lastError: RedisError? { state.withLock { $0.lastError } }

    /// Runs the commands as one pipeline (one round trip) and returns one reply per command.
    /// Server error replies are returned as `.error` values, not thrown.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result { try self.pipelineSync(commands) }) }
        }
    }

    /// Submits a pipeline without waiting: `completion` runs on the client's queue when the
    /// replies arrive (or the call fails). Pipelines run in submission order.
    public func submit(_ commands: [RedisCommand], completion: @escaping @Sendable (Result<[RedisReply], Error>) -> Void) {
        guard !commands.isEmpty else { completion(.success([])); return }
        queue.async { completion(Result { try self.run(commands) }) }
    }

    /// Blocking form of `pipeline`, for threads that are not part of the cooperative pool.
    public func pipelineSync(_ commands: [RedisCommand]) throws -> [RedisReply] {
        if DispatchQueue.getSpecific(key: Self.onQueueKey) == ObjectIdentifier(self) {
            return try run(commands)
        }
        return try queue.sync { try run(commands) }
    }

    private static let onQueueKey = DispatchSpecificKey<ObjectIdentifier>()

    private func run(_ commands: [RedisCommand]) throws -> [RedisReply] {
        let connection = try connectIfNeeded()
        do {
            let replies = try connection.pipeline(commands)
            state.withLock { s in s.failures = 0; s.lastError = nil }
            return replies
        } catch let e as RedisError {
            dropConnection(after: e)
            throw e
        }
    }

    private func connectIfNeeded() throws -> RedisConnection {
        let (existing, waitUntil) = state.withLock { ($0.connection, $0.nextAttempt) }
        if let existing { return existing }
        if let waitUntil, ContinuousClock.now < waitUntil {
            throw RedisError(code: .unavailable,
                             message: "\(configuration.redactedURL) is unreachable; reconnecting after backoff (\(state.withLock { $0.lastError?.message ?? "" }))")
        }
        do {
            let c = try RedisConnection(configuration)
            let hadFailures = state.withLock { s -> Bool in
                defer { s.connection = c; s.nextAttempt = nil }
                return s.failures > 0
            }
            if hadFailures { logger.info("reconnected to \(configuration.redactedURL)") }
            return c
        } catch let e as RedisError {
            dropConnection(after: e)
            throw e
        }
    }

    private func dropConnection(after error: RedisError) {
        guard error.code == .connection else { return }
        let delay: Duration = state.withLock { s in
            s.connection = nil
            s.failures += 1
            s.lastError = error
            var d = configuration.minBackoff
            for _ in 1..<min(s.failures, 30) { d = min(d * 2, configuration.maxBackoff) }
            s.nextAttempt = ContinuousClock.now + d
            return d
        }
        logger.warning("redis connection lost: \(error.message); next attempt in \(delay)")
    }

    // MARK: typed commands

    public func get(_ key: String) async throws -> [UInt8]? {
        try await pipeline([.get(key)])[0].bytes()
    }

    public func set(_ key: String, _ value: [UInt8], expireSeconds: Int? = nil) async throws {
        try await pipeline([.set(key, value, expireSeconds: expireSeconds)])[0].checked()
    }

    public func mget(_ keys: [String]) async throws -> [[UInt8]?] {
        guard !keys.isEmpty else { return [] }
        return try await pipeline([.mget(keys)])[0].array().map { try $0.bytes() }
    }

    @discardableResult
    public func del(_ keys: [String]) async throws -> Int64 {
        try await pipeline([.del(keys)])[0].integer()
    }

    @discardableResult
    public func expire(_ key: String, seconds: Int) async throws -> Bool {
        try await pipeline([.expire(key, seconds: seconds)])[0].integer() == 1
    }

    /// Remaining TTL in seconds (-1: no expiry, -2: no such key).
    public func ttl(_ key: String) async throws -> Int64 {
        try await pipeline([.ttl(key)])[0].integer()
    }

    @discardableResult
    public func zadd(_ key: String, _ members: [(score: Double, member: [UInt8])]) async throws -> Int64 {
        try await pipeline([.zadd(key, members)])[0].integer()
    }

    public func zrangebyscore(_ key: String, min: String, max: String) async throws -> [[UInt8]] {
        try await pipeline([.zrangebyscore(key, min: min, max: max)])[0].array().compactMap { try $0.bytes() }
    }

    @discardableResult
    public func zremrangebyscore(_ key: String, min: String, max: String) async throws -> Int64 {
        try await pipeline([.zremrangebyscore(key, min: min, max: max)])[0].integer()
    }
}
