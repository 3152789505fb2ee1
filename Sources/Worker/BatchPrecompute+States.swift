import Foundation
import KafkaClient
import RankingModel
import RedisClient

extension BatchPrecompute {
    /// The users' latest states: the whole changelog, or L4 without a broker.
    func loadStates(redis: RedisClient, progress: @escaping @Sendable (JobProgress) -> Void) async throws -> LoadedStates {
        var out = LoadedStates()
        if let kafka = configuration.kafka {
            let topic = configuration.topics.state
            let reader = KafkaConfiguration(["fetch.max.bytes": "52428800", "max.partition.fetch.bytes": "16777216"])
                .merging(kafka.properties)
            guard let n = try PartitionScan.partitionCounts(kafka: reader)[topic] else {
                throw WorkerError("topic \(topic) does not exist")
            }
            let snapshot = try await StateSnapshot.read(kafka: reader, topic: topic, partitions: (0..<Int32(n)).map { $0 },
                                                        manifest: manifest, logger: logger) { done, total in
                progress(JobProgress(phase: "reading \(topic)", done: done, total: total))
            }
            out.check = ModelVersionCheck(snapshot: snapshot)
            for users in snapshot.partitions.values {
                for (user, entry) in users {
                    // A user lives in one partition; should a misrouted record have put them in
                    // two, the later state wins.
                    if let seen = out.states[user], seen.tLast > entry.state.tLast { continue }
                    out.states[user] = entry.state
                }
            }
            out.source = "topic \(topic) (\(n) partitions, \(snapshot.records) records, \(snapshot.unreadable) unreadable)"
        } else {
            out.states = try await scanL4(redis: redis, progress: progress)
            out.source = "L4 (\(configuration.keyPrefix)features:user:*)"
        }
        return out
    }

    /// Every `features:user:*` state in Redis (SCAN + MGET).
    private func scanL4(redis: RedisClient, progress: @escaping @Sendable (JobProgress) -> Void) async throws -> [Int64: UserState] {
        let pattern = configuration.keyPrefix + "features:user:*"
        var states: [Int64: UserState] = [:]
        var cursor = "0"
        var unreadable = 0
        repeat {
            let reply = try await redis.pipeline([RedisCommand("SCAN", [cursor, "MATCH", pattern, "COUNT", "1000"])])[0].array()
            guard reply.count == 2, let next = try reply[0].bytes() else { throw WorkerError("SCAN: unexpected reply") }
            cursor = String(decoding: next, as: UTF8.self)
            let keys = try reply[1].array().compactMap { try $0.bytes().map { String(decoding: $0, as: UTF8.self) } }
            guard !keys.isEmpty else { continue }
            let values = try await redis.pipeline([.mget(keys)])[0].array()
            for v in values {
                guard let bytes = try v.bytes() else { continue }
                do {
                    let s = try UserState.decode(bytes, manifest: manifest)
                    states[s.userId] = s
                } catch {
                    unreadable += 1
                    if unreadable <= 3 { logger.error("an L4 state is unreadable: \(error.message)") }
                }
            }
            progress(JobProgress(phase: "scanning L4", done: states.count, total: 0))
        } while cursor != "0"
        return states
    }

    /// `feedrank batch --verify`: reads back the L1 entries of the active users (all, or an
    /// even sample) and checks each against contract section 3 at the run's T.
    public func verify(sample: Int? = nil, progress: @escaping @Sendable (JobProgress) -> Void = { _ in }) async throws -> BatchVerification {
        let config = configuration
        let redis = try RedisClient(url: config.redisURL, logger: logger)
        let store: CheckpointStore = config.checkpointPath.map { .file($0) } ?? .redis(redis, key: config.checkpointKey)
        var result = BatchVerification()
        guard let at = try config.at ?? store.load()?.at else {
            throw WorkerError("no checkpoint at \(store.description) to take T from: pass --at")
        }
        result.at = at
        let loaded = try await loadStates(redis: redis, progress: progress)
        var users = activeUsers(loaded.states, at: at)
        if let sample, sample > 0, sample < users.count {
            let step = Double(users.count) / Double(sample)
            users = (0..<sample).map { users[Int(Double($0) * step)] }
        }
        let checker = L1EntryCheck(catalog: catalog)
        let ttl = config.cache.backfillRankingTTL
        for start in stride(from: 0, to: users.count, by: 1000) {
            let chunk = Array(users[start..<min(users.count, start + 1000)])
            let keys = chunk.map { config.keyPrefix + CacheKeys.ranking($0) }
            let replies = try await redis.pipeline([.mget(keys)] + keys.map { RedisCommand.ttl($0) })
            let values = try replies[0].array()
            for (i, user) in chunk.enumerated() {
                result.checked += 1
                let entry = try values[i].bytes()
                let v = checker.violations(entry: entry, ttl: try replies[1 + i].integer(), user: user,
                                           state: loaded.states[user], at: at, numItems: config.numItems, expectedTTL: ttl)
                if entry == nil { result.missing += 1 } else if !v.isEmpty { result.invalid += 1 }
                if !v.isEmpty && result.examples.count < 10 { result.examples.append("user \(user): " + v.prefix(3).joined(separator: "; ")) }
            }
            progress(JobProgress(phase: "verifying", done: result.checked, total: users.count))
        }
        return result
    }
}
