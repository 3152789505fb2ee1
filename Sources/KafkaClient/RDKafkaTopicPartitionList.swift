import CRdKafka

/// Owner of an `rd_kafka_topic_partition_list_t`; Swift values are copied in and out.
final class RDKafkaTopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    private let owned: Bool

    init(capacity: Int = 1) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(1, capacity)))
        owned = true
    }

    /// Wraps a list librdkafka owns (e.g. inside an event); not destroyed here.
    init(borrowing p: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        pointer = p
        owned = false
    }

    convenience init(_ entries: [(TopicPartition, Int64?)]) {
        self.init(capacity: entries.count)
        for (tp, offset) in entries { add(tp, offset: offset) }
    }

    deinit {
        if owned { rd_kafka_topic_partition_list_destroy(pointer) }
    }

    func add(_ tp: TopicPartition, offset: Int64? = nil) {
        let e = rd_kafka_topic_partition_list_add(pointer, tp.topic, tp.partition)!
        if let offset { e.pointee.offset = offset }
    }

    /// (topic-partition, offset, error) of every entry.
    var entries: [(TopicPartition, Int64, rd_kafka_resp_err_t)] {
        (0..<Int(pointer.pointee.cnt)).map { i in
            let e = pointer.pointee.elems[i]
            return (TopicPartition(String(cString: e.topic), e.partition), e.offset, e.err)
        }
    }

    var topicPartitions: [TopicPartition] { entries.map(\.0) }
}
