import Foundation
import KafkaClient

/// Reads fixed offset ranges of partitions with a plain assignment consumer (no group
/// membership, no commits — it cannot disturb the live worker's group), each partition in
/// order. Used by replay and batch for the activity log and the `user-state` changelog.
package enum PartitionScan {
    package enum Decision { case next, stopPartition }

    package struct Range: Sendable {
        package var start: Int64
        /// Exclusive: a high watermark captured before reading (ListOffsets). `read` raises it
        /// to the high watermark of the partition's first fetch response: Tansu's ListOffsets
        /// answer stops at the base offset of the last record batch (see
        /// `KafkaConsumer.fetchedWatermarks`); on Kafka both agree.
        package var end: Int64

        package init(start: Int64, end: Int64) {
            self.start = start
            self.end = end
        }
    }

    /// Calls `body` for every record of `ranges` with the partition's end (records past it are ignored; a
    /// partition also ends when `body` says so). Returns the ends it read to. Throws
    /// `CancellationError` when the task is cancelled, and a `WorkerError` naming the
    /// partitions that made no progress for `idleTimeout` (e.g. records deleted by retention
    /// while reading).
    @discardableResult
    package static func read(kafka: KafkaConfiguration, ranges: [TopicPartition: Range], idleTimeout: Duration = .seconds(60),
                     _ body: (_ record: KafkaRecord, _ end: Int64) throws -> Decision) async throws -> [TopicPartition: Int64] {
        var ends = ranges.mapValues(\.end)
        let active = ranges.filter { $0.value.start < $0.value.end }
        guard !active.isEmpty else { return ends }
        var settled = Set<TopicPartition>()
        let consumer = try KafkaConsumer(
            configuration: kafka.merging(["enable.partition.eof": "false"]),
            subscription: .assignment(active.mapValues(\.start)), bufferCapacity: 20_000)
        let lastProgress = SharedCounter(Self.nowNanos())
        let idled = SharedCounter(0)
        var done = Set<TopicPartition>()
        try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Watchdog: ends the stream when nothing arrives for idleTimeout.
                    let limit = idleTimeout.components.seconds * 1_000_000_000
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: 200_000_000)
                        if Self.nowNanos() - lastProgress.current > limit {
                            idled.store(1)
                            consumer.stopRecords()
                            return
                        }
                    }
                }
                var n = 0
                for try await record in consumer.records {
                    n += 1
                    if n & 1023 == 0 {
                        lastProgress.store(Self.nowNanos())
                        try Task.checkCancellation()
                    }
                    let tp = record.topicPartition
                    guard active[tp] != nil, !done.contains(tp) else { continue }
                    if !settled.contains(tp), let fetched = consumer.fetchedWatermarks(tp) {
                        settled.insert(tp)
                        ends[tp] = max(ends[tp]!, fetched.high)
                    }
                    let end = ends[tp]!
                    guard record.offset < end else { continue }
                    lastProgress.store(Self.nowNanos())
                    let decision = try body(record, end)
                    if decision == .stopPartition || record.offset >= end - 1 {
                        done.insert(tp)
                        try? consumer.pause([tp])
                        if done.count == active.count { break }
                    }
                }
                group.cancelAll()
            }
        } onCancel: {
            consumer.stopRecords()
        }
        await consumer.close()
        try Task.checkCancellation()
        if done.count < active.count {
            let missing = Set(active.keys).subtracting(done).map(\.description).sorted()
            if idled.current == 1 {
                throw WorkerError("reading \(missing.joined(separator: ", ")) made no progress for \(idleTimeout) before reaching the end offsets captured at start")
            }
            throw WorkerError("the consumer stopped before \(missing.joined(separator: ", ")) reached the end offsets captured at start")
        }
        return ends
    }

    static func nowNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Low/high watermarks of every partition, through one short-lived reader.
    package static func watermarks(kafka: KafkaConfiguration, _ tps: [TopicPartition]) throws -> [TopicPartition: (low: Int64, high: Int64)] {
        guard let first = tps.first else { return [:] }
        let reader = try KafkaConsumer(configuration: kafka, subscription: .assignment([first: KafkaOffset.end]), bufferCapacity: 1)
        defer { reader.close() }
        var out: [TopicPartition: (low: Int64, high: Int64)] = [:]
        for tp in tps { out[tp] = try reader.watermarks(tp, timeout: .seconds(10)) }
        return out
    }

    /// Per partition, the first offset whose timestamp is >= the given time (ms).
    static func offsets(kafka: KafkaConfiguration, forTimes times: [TopicPartition: Int64]) throws -> [TopicPartition: Int64] {
        guard let first = times.keys.first else { return [:] }
        let reader = try KafkaConsumer(configuration: kafka, subscription: .assignment([first: KafkaOffset.end]), bufferCapacity: 1)
        defer { reader.close() }
        return try reader.offsets(forTimes: times, timeout: .seconds(10))
    }

    /// Partition counts of the cluster's topics.
    package static func partitionCounts(kafka: KafkaConfiguration) throws -> [String: Int] {
        let reader = try KafkaConsumer(configuration: kafka, subscription: .assignment([:]), bufferCapacity: 1)
        defer { reader.close() }
        return try reader.topicPartitionCounts(timeout: .seconds(10))
    }
}
