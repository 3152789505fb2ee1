import KafkaClient
import Logging
import RankingModel

/// The latest state of every user in (some partitions of) the `user-state` changelog, chosen
/// with `StateRestorer`'s rule — per user the record with the furthest source offset wins,
/// otherwise the last one; a tombstone removes the user — plus what the records say about the
/// model that wrote them (the `model_version` header, see `ModelVersionCheck`).
public struct StateSnapshot: Sendable {
    public struct Entry: Sendable {
        public var state: UserState
        /// The `model_version` header of the record the state came from (nil: none).
        public var modelVersion: String?
        public var offset: Int64
    }

    /// Per partition of the state topic (= input partition), per user.
    public var partitions: [Int32: [Int64: Entry]] = [:]
    /// Where the read stopped per partition (exclusive): the high watermark at the start.
    public var endOffsets: [Int32: Int64] = [:]
    public var records = 0
    public var unreadable = 0

    public init() {}

    public var userCount: Int { partitions.values.reduce(0) { $0 + $1.count } }

    public func entry(_ partition: Int32, _ user: Int64) -> Entry? { partitions[partition]?[user] }

    /// How many of the latest states carry each `model_version` header ("" = no header).
    public var modelVersions: [String: Int] {
        var out: [String: Int] = [:]
        for users in partitions.values { for e in users.values { out[e.modelVersion ?? "", default: 0] += 1 } }
        return out
    }

    /// Applies one changelog record (the restore rule).
    mutating func absorb(_ record: KafkaRecord, partition: Int32, manifest: Manifest, logger: Logger) {
        records += 1
        guard !record.value.isEmpty else {
            if let key = record.keyString, let user = Int64(key) { partitions[partition]?[user] = nil }
            return
        }
        let state: UserState
        do { state = try UserState.decode(record.value, manifest: manifest) } catch {
            unreadable += 1
            if unreadable <= 3 { logger.error("\(record.topic)[\(partition)]@\(record.offset) is unreadable: \(error.message)") }
            return
        }
        if let existing = partitions[partition]?[state.userId]?.state, let a = existing.source, let b = state.source,
           a.partition == b.partition, b.offset < a.offset {
            return  // an older state that arrived late: keep the newer one
        }
        partitions[partition, default: [:]][state.userId] = Entry(state: state, modelVersion: record.header(ModelVersionCheck.header)?.stringValue,
                                                                  offset: record.offset)
    }

    /// Reads `partitions` of `topic` up to the high watermarks captured first.
    public static func read(kafka: KafkaConfiguration, topic: String, partitions: [Int32], manifest: Manifest,
                            logger: Logger, progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> StateSnapshot {
        let tps = partitions.map { TopicPartition(topic, $0) }
        let marks = try PartitionScan.watermarks(kafka: kafka, tps)
        var snapshot = StateSnapshot()
        var ranges: [TopicPartition: PartitionScan.Range] = [:]
        var total = 0
        for tp in tps {
            let m = marks[tp]!
            snapshot.endOffsets[tp.partition] = m.high
            snapshot.partitions[tp.partition] = [:]
            ranges[tp] = PartitionScan.Range(start: m.low, end: m.high)
            total += Int(m.high - m.low)
        }
        progress?(0, total)
        let ends = try await PartitionScan.read(kafka: kafka, ranges: ranges) { record, _ in
            snapshot.absorb(record, partition: record.partition, manifest: manifest, logger: logger)
            if snapshot.records % 4096 == 0 { progress?(snapshot.records, max(total, snapshot.records)) }
            return .next
        }
        for (tp, end) in ends { snapshot.endOffsets[tp.partition] = end }
        progress?(snapshot.records, snapshot.records)
        return snapshot
    }
}
