import KafkaClient
import Logging
import RankingModel

/// Rebuilds the states of input partitions' users from the same partitions of the `user-state`
/// changelog (the state of record), reading each from the start to its end. Several partitions
/// are read by one reader at once: a start-up assignment of 12 partitions took 12 x ~0.5 s
/// (a consumer and its first fetch per partition) when restored one by one, ~0.5 s together.
/// Per user the record with the furthest source offset wins (a late duplicate of an older
/// state cannot overwrite a newer one), otherwise the last one.
struct StateRestorer: Sendable {
    let kafka: KafkaConfiguration
    let topic: String
    let manifest: Manifest
    let logger: Logger

    func restore(partitions: [Int32], timeout: Duration) async throws -> [Int32: [Int64: UserRecord]] {
        var users: [Int32: [Int64: UserRecord]] = [:]
        var bad: [Int32: Int] = [:], records: [Int32: Int] = [:]
        for p in partitions { users[p] = [:]; bad[p] = 0; records[p] = 0 }
        let start = Dictionary(uniqueKeysWithValues: partitions.map { (TopicPartition(topic, $0), KafkaOffset.beginning) })
        try await KafkaConsumer.readToEnd(configuration: kafka, from: start, timeout: timeout) { record in
            let p = record.partition
            records[p, default: 0] += 1
            if record.value.isEmpty {
                if let key = record.keyString, let user = Int64(key) { users[p]?[user] = nil }  // a tombstone
                return
            }
            do {
                let state = try UserState.decode(record.value, manifest: manifest)
                if let existing = users[p]?[state.userId]?.state, let a = existing.source, let b = state.source,
                   a.partition == b.partition, b.offset < a.offset {
                    return  // an older state that arrived late: keep the newer one
                }
                users[p, default: [:]][state.userId, default: UserRecord()].state = state
            } catch {
                bad[p, default: 0] += 1
                if bad[p]! <= 3 { logger.error("user-state \(record.topicPartition)@\(record.offset) is unreadable: \(error)") }
            }
        }
        for p in partitions.sorted() {
            logger.info("restored \(users[p]?.count ?? 0) user states from \(TopicPartition(topic, p)) (\(records[p] ?? 0) records, \(bad[p] ?? 0) unreadable)")
        }
        return users
    }
}

/// The worker's error type.
public struct WorkerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
