/// A topic and partition.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    /// The partition and the topic name's length: a worker looks topic-partitions up several
    /// times per record (commit tracking, assignment checks), and hashing the whole name was a
    /// few per cent of its CPU. A process holds a handful of topics; equal names have equal
    /// lengths, and `==` still compares the names.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(partition)
        hasher.combine(topic.utf8.count)
    }
}

/// A record header; values are raw bytes (nil for a null header value).
public struct KafkaHeader: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    public init(key: String, string: String) {
        self.init(key: key, value: Array(string.utf8))
    }

    public var stringValue: String? { value.map { String(decoding: $0, as: UTF8.self) } }
}

/// A record as consumed: bytes copied out of librdkafka's message before it is freed.
public struct KafkaRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch (create or log-append time), nil when the broker sent none.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
                headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    public var keyString: String? { key.map { String(decoding: $0, as: UTF8.self) } }
    public func header(_ name: String) -> KafkaHeader? { headers.first { $0.key == name } }
}

/// A record to produce. Without a partition, the configured partitioner (murmur2 by
/// default in FeedRank, like the Java client) picks one from the key.
public struct OutgoingRecord: Sendable {
    public var topic: String
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    public var timestamp: Int64?

    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8],
                headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    public init(topic: String, partition: Int32? = nil, key: String?, value: [UInt8],
                headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: key.map { Array($0.utf8) }, value: value,
                  headers: headers, timestamp: timestamp)
    }
}

/// Where a produced record landed.
public struct DeliveryReport: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}
