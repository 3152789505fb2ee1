/// Kafka's default key partitioner (the Java client's, librdkafka's `murmur2_random`):
/// `(murmur2(key) & 0x7fffffff) % partitions`. FeedRank uses it to know which partition —
/// and so which worker — owns a user without asking the broker.
public enum KafkaPartitioner {
    public static func partition(forKey key: [UInt8], partitionCount: Int) -> Int32 {
        precondition(partitionCount > 0, "partition count must be positive")
        return Int32(Int(murmur2(key) & 0x7fff_ffff) % partitionCount)
    }

    public static func partition(forKey key: String, partitionCount: Int) -> Int32 {
        partition(forKey: Array(key.utf8), partitionCount: partitionCount)
    }

    /// MurmurHash2 as in Kafka's `Utils.murmur2` (seed 0x9747b28c).
    public static func murmur2(_ data: [UInt8]) -> UInt32 {
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        let blocks = length / 4
        for i in 0..<blocks {
            let b = i * 4
            var k = UInt32(data[b]) | UInt32(data[b + 1]) << 8 | UInt32(data[b + 2]) << 16 | UInt32(data[b + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = blocks * 4
        switch length & 3 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 1:
            h ^= UInt32(data[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return h
    }
}
