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
        let reader = try KafkaConsumer(configuration: kafka.merging(["enable.partition.eof": "false"]),
                                       subscription: .assignment([tp: KafkaOffset.beginning]), bufferCapacity: 5_000)
        defer { reader.close() }
        let (low, high) = try reader.watermarks(tp, timeout: .seconds(10))
        var users: [Int64: UserRecord] = [:]
        guard high > low else { return users }
        var bad = 0
        let started = ContinuousClock.now
        for try await record in reader.records {
            if let value = record.value.isEmpty ? nil : record.value {
                do {
                    let state = try UserState.decode(value, manifest: manifest)
                    if let existing = users[state.userId]?.state, let a = existing.source, let b = state.source,
                       a.partition == b.partition, b.offset < a.offset {
                        // An older state that arrived late: keep the newer one.
                    } else {
                        users[state.userId, default: UserRecord()].state = state
                    }
                } catch {
                    bad += 1
                    if bad <= 3 { logger.error("user-state \(tp)@\(record.offset) is unreadable: \(error.message)") }
                }
            } else if let key = record.keyString, let user = Int64(key) {
                users[user] = nil  // a tombstone
            }
            if record.offset >= high - 1 { break }
            if ContinuousClock.now - started > timeout {
                throw WorkerError("restoring \(tp) took longer than \(timeout) (at offset \(record.offset) of \(high))")
            }
        }
        logger.info("restored \(users.count) user states from \(tp) (\(high - low) records, \(bad) unreadable)")
        return users
    }
}

/// The worker's error type.
public struct WorkerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
