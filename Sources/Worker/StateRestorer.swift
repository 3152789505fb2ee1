import KafkaClient
import Logging
import RankingModel

/// Rebuilds the states of one input partition's users from partition p of the `user-state`
/// changelog (the state of record), reading from the start to the end offset captured first.
/// Per user the record with the furthest source offset wins (a late duplicate of an older
/// state cannot overwrite a newer one), otherwise the last one.
struct StateRestorer: Sendable {
    let kafka: KafkaConfiguration
    let topic: String
    let manifest: Manifest
    let logger: Logger

    func restore(partition: Int32, timeout: Duration) async throws -> [Int64: UserRecord] {
        let tp = TopicPartition(topic, partition)
        var users: [Int64: UserRecord] = [:]
        var bad = 0, records = 0
        try await KafkaConsumer.readToEnd(configuration: kafka, from: [tp: KafkaOffset.beginning], timeout: timeout) { record in
            records += 1
            if record.value.isEmpty {
                if let key = record.keyString, let user = Int64(key) { users[user] = nil }  // a tombstone
                return
            }
            do {
                let state = try UserState.decode(record.value, manifest: manifest)
                if let existing = users[state.userId]?.state, let a = existing.source, let b = state.source,
                   a.partition == b.partition, b.offset < a.offset {
                    return  // an older state that arrived late: keep the newer one
                }
                users[state.userId, default: UserRecord()].state = state
            } catch {
                bad += 1
                if bad <= 3 { logger.error("user-state \(tp)@\(record.offset) is unreadable: \(error)") }
            }
        }
        logger.info("restored \(users.count) user states from \(tp) (\(records) records, \(bad) unreadable)")
        return users
    }
}

/// The worker's error type.
public struct WorkerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
