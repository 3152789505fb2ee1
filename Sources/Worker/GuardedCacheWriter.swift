import RedisClient
import Synchronization

/// Cache writes for replay and batch that never replace something the live worker wrote from
/// a newer state (so both can run next to the live worker). Each write is one Lua script run
/// atomically by Redis (EVALSHA; the scripts are loaded once and reloaded after NOSCRIPT):
/// - L1 `rankings:user:{id}`: written unless the entry there was made by the live worker
///   (trigger other than "backfill") at or after `runStartedAt` — such an entry comes from a
///   state at least as new as the one batch/replay read at the start.
/// - L4 `features:user:{id}`: written unless the state there has the same source partition and
///   a further source offset (the live worker has applied more events).
public final class GuardedCacheWriter: Sendable {
    public let redis: RedisClient
    public let keyPrefix: String
    private let shas = Mutex<[String]?>(nil)

    /// KEYS[1] key; ARGV[1] value, ARGV[2] TTL seconds, ARGV[3] run start (ms).
    static let l1Script = """
    local cur = redis.call('GET', KEYS[1])
    if cur then
      local t = string.match(cur, '"trigger":"(%a+)"')
      local g = tonumber(string.match(cur, '"generated_at":(%d+)'))
      if t and t ~= 'backfill' and g and g >= tonumber(ARGV[3]) then return 0 end
    end
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    return 1
    """

    /// KEYS[1] key; ARGV[1] value, ARGV[2] TTL seconds, ARGV[3] source partition, ARGV[4] source offset.
    static let l4Script = """
    local cur = redis.call('GET', KEYS[1])
    if cur then
      local p, o = string.match(cur, '"src":{"p":(%d+),"o":(%d+)}')
      if p and tonumber(p) == tonumber(ARGV[3]) and tonumber(o) > tonumber(ARGV[4]) then return 0 end
    end
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    return 1
    """

    public init(redis: RedisClient, keyPrefix: String) {
        self.redis = redis
        self.keyPrefix = keyPrefix
    }

    public struct Outcome: Sendable, Equatable {
        public var written = 0
        /// Not written: the live worker's entry is newer.
        public var skipped = 0
        public init() {}
    }

    /// One guarded L1 write.
    public struct L1Write: Sendable {
        public var user: Int64
        public var value: [UInt8]
        public var ttl: Int
        public var runStartedAt: Int64
        public init(user: Int64, value: [UInt8], ttl: Int, runStartedAt: Int64) {
            self.user = user; self.value = value; self.ttl = ttl; self.runStartedAt = runStartedAt
        }
    }

    /// One guarded L4 write.
    public struct L4Write: Sendable {
        public var user: Int64
        public var value: [UInt8]
        public var ttl: Int
        public var source: (partition: Int32, offset: Int64)?
        public init(user: Int64, value: [UInt8], ttl: Int, source: (partition: Int32, offset: Int64)?) {
            self.user = user; self.value = value; self.ttl = ttl; self.source = source
        }
    }

    /// Runs the writes as one pipeline (blocking: call it off the cooperative pool, or use
    /// the async form). Throws when Redis is unreachable or a script fails.
    public func writeSync(l1: [L1Write] = [], l4: [L4Write] = []) throws -> Outcome {
        guard !l1.isEmpty || !l4.isEmpty else { return Outcome() }
        var attempt = 0
        while true {
            attempt += 1
            let sha = try scripts()
            var commands: [RedisCommand] = []
            commands.reserveCapacity(l1.count + l4.count)
            for w in l1 {
                commands.append(RedisCommand([Array("EVALSHA".utf8), Array(sha[0].utf8), Array("1".utf8),
                                              Array((keyPrefix + CacheKeys.ranking(w.user)).utf8), w.value,
                                              Array(String(w.ttl).utf8), Array(String(w.runStartedAt).utf8)]))
            }
            for w in l4 {
                // Without a source position nothing can be newer by offset: p = -1 never matches.
                commands.append(RedisCommand([Array("EVALSHA".utf8), Array(sha[1].utf8), Array("1".utf8),
                                              Array((keyPrefix + CacheKeys.features(w.user)).utf8), w.value,
                                              Array(String(w.ttl).utf8), Array(String(w.source?.partition ?? -1).utf8),
                                              Array(String(w.source?.offset ?? -1).utf8)]))
            }
            let replies = try redis.pipelineSync(commands)
            var out = Outcome()
            var noScript = false
            for r in replies {
                switch r {
                case .integer(1): out.written += 1
                case .integer: out.skipped += 1
                case .error(let e) where e.hasPrefix("NOSCRIPT"): noScript = true
                case .error(let e): throw WorkerError("Redis script failed: \(e)")
                default: throw WorkerError("Redis script: unexpected reply \(r)")
                }
            }
            if noScript && attempt == 1 {
                // Redis restarted or flushed its scripts: load them again and redo the pipeline
                // (the writes are idempotent).
                shas.withLock { $0 = nil }
                continue
            }
            if noScript { throw WorkerError("Redis keeps answering NOSCRIPT after loading the scripts") }
            return out
        }
    }

    public func write(l1: [L1Write] = [], l4: [L4Write] = []) async throws -> Outcome {
        try await runOffPool { try self.writeSync(l1: l1, l4: l4) }
    }

    private func scripts() throws -> [String] {
        if let s = shas.withLock({ $0 }) { return s }
        let replies = try redis.pipelineSync([RedisCommand("SCRIPT", ["LOAD", Self.l1Script]),
                                              RedisCommand("SCRIPT", ["LOAD", Self.l4Script])])
        let loaded = try replies.map { r -> String in
            guard let b = try r.bytes() else { throw WorkerError("SCRIPT LOAD returned nothing") }
            return String(decoding: b, as: UTF8.self)
        }
        shas.withLock { $0 = loaded }
        return loaded
    }
}
