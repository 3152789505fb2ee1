import Foundation
import KafkaClient
import Synchronization
import Testing

@Suite("Kafka adapter against the local broker", .serialized)
struct KafkaClientTests {
    @Test("the linked librdkafka is >= 2.8 (never bookworm's 2.0.2)")
    func runtimeVersion() {
        let (major, minor, _) = KafkaLibrary.versionComponents
        #expect(major > 2 || (major == 2 && minor >= 8), "runtime librdkafka is \(KafkaLibrary.version)")
    }

    @Test("10,000 keyed records with headers are consumed exactly once, in order per partition; a new member resumes after the commit")
    func produceConsumeCommitResume() async throws {
        let topic = TestBroker.uniqueName("roundtrip")
        try TestBroker.createTopic(topic, partitions: 4)
        let producer = try KafkaProducer(configuration: TestBroker.config())
        let total = 10_000
        // Enqueue in sequence order (so per-key order is defined), await all delivery reports.
        let delivered = Mutex<[Int: DeliveryReport]>([:])
        let failures = Mutex<[KafkaError]>([])
        for i in 0..<total {
            let value = Array(#"{"i":\#(i),"pad":"\#(String(repeating: "x", count: 180))"}"#.utf8)
            let record = OutgoingRecord(topic: topic, key: "user-\(i % 97)", value: value,
                                        headers: [KafkaHeader(key: "seq", string: "\(i)"), KafkaHeader(key: "empty", value: nil)])
            try producer.enqueue(record) { result in
                switch result {
                case .success(let r): delivered.withLock { $0[i] = r }
                case .failure(let e): failures.withLock { $0.append(e) }
                }
            }
        }
        try await producer.flush(timeout: .seconds(30))
        #expect(failures.withLock { $0.isEmpty })
        let reports = delivered.withLock { $0 }
        #expect(reports.count == total)
        // The key partitioner is murmur2: every key landed where KafkaPartitioner says.
        for (i, r) in reports {
            #expect(r.partition == KafkaPartitioner.partition(forKey: "user-\(i % 97)", partitionCount: 4))
        }

        let group = TestBroker.uniqueName("g")
        let consumer = try KafkaConsumer(configuration: TestBroker.consumerConfig(["group.id": group]),
                                         subscription: .group(topics: [topic]))
        let records = try await collect(consumer, count: total, within: 60)
        #expect(records.count == total)
        var seen = Set<Int>()
        var lastOffset: [Int32: Int64] = [:]
        var lastSeqPerKey: [String: Int] = [:]
        for r in records {
            let seq = Int(r.header("seq")!.stringValue!)!
            #expect(seen.insert(seq).inserted, "record \(seq) delivered twice")
            #expect(r.header("empty")?.value == nil)
            if let prev = lastOffset[r.partition] { #expect(r.offset > prev, "out of order in partition \(r.partition)") }
            lastOffset[r.partition] = r.offset
            // Records of one key keep their produce order.
            let key = r.keyString!
            if let prev = lastSeqPerKey[key] { #expect(seq > prev) }
            lastSeqPerKey[key] = seq
            #expect(r.timestamp != nil)
            #expect(r.topic == topic)
        }
        #expect(seen.count == total)

        // Commit all but the last 10 records of partition 0, then a new member resumes there.
        var commit: [TopicPartition: Int64] = [:]
        for (p, last) in lastOffset { commit[TopicPartition(topic, p)] = last + 1 }
        let p0 = TopicPartition(topic, 0)
        commit[p0] = commit[p0]! - 10
        try await consumer.commit(commit)
        let committed = try consumer.committed(Array(commit.keys))
        for (tp, o) in commit { #expect(committed[tp] == o) }
        await consumer.close()

        let second = try KafkaConsumer(configuration: TestBroker.consumerConfig(["group.id": group]),
                                       subscription: .group(topics: [topic]))
        let rest = try await collect(second, count: 10, within: 30)
        #expect(rest.count == 10)
        #expect(rest.allSatisfy { $0.partition == 0 && $0.offset >= commit[p0]! })
        // Nothing beyond those 10 arrives.
        try await Task.sleep(nanoseconds: 500_000_000)
        await second.close()
        producer.close()
    }

    @Test("two members split the partitions; when one leaves, the other gets them all")
    func rebalance() async throws {
        let topic = TestBroker.uniqueName("rebalance")
        try TestBroker.createTopic(topic, partitions: 4)
        let group = TestBroker.uniqueName("g")
        let eventsA = Mutex<[RebalanceEvent]>([])
        let a = try KafkaConsumer(configuration: TestBroker.consumerConfig(["group.id": group]),
                                  subscription: .group(topics: [topic]),
                                  onRebalance: { e in eventsA.withLock { $0.append(e) } })
        try await waitUntil(20) { a.assignment.count == 4 }
        let b = try KafkaConsumer(configuration: TestBroker.consumerConfig(["group.id": group]),
                                  subscription: .group(topics: [topic]))
        try await waitUntil(30) { a.assignment.count == 2 && b.assignment.count == 2 }
        #expect(a.assignment.isDisjoint(with: b.assignment))
        #expect(eventsA.withLock { $0.contains { if case .revoked = $0 { true } else { false } } })
        await b.close()
        try await waitUntil(30) { a.assignment.count == 4 }
        #expect(a.assignment == Set((0..<4).map { TopicPartition(topic, Int32($0)) }))
        await a.close()
    }

    @Test("a record over the size limit fails with messageTooLarge at once")
    func oversizeRecord() async throws {
        let producer = try KafkaProducer(configuration: TestBroker.config())
        let big = [UInt8](repeating: 65, count: 2_000_000)
        await #expect {
            try await producer.send(OutgoingRecord(topic: TestBroker.uniqueName("big"), key: "k", value: big))
        } throws: { e in
            guard let k = e as? KafkaError else { return false }
            return k.code == .messageTooLarge && k.message.contains("2000000 bytes")
        }
        producer.close()
    }

    @Test("an unknown topic is a clear error: producer (auto-create off) and consumer metadata")
    func unknownTopic() async throws {
        let name = TestBroker.uniqueName("nosuch")
        let producer = try KafkaProducer(configuration: TestBroker.config([
            "allow.auto.create.topics": "false", "message.timeout.ms": "3000",
        ]))
        let started = Date()
        await #expect {
            try await producer.send(OutgoingRecord(topic: name, key: "k", value: [1]))
        } throws: { e in
            guard let k = e as? KafkaError else { return false }
            return (k.code == .unknownTopic || k.code == .timedOut) && k.message.contains(name)
        }
        #expect(Date().timeIntervalSince(started) < 15)
        #expect {
            try producer.partitionCount(topic: name)
        } throws: { e in (e as? KafkaError)?.code == .unknownTopic && "\(e)".contains(name) }
        producer.close()
    }

    @Test("an unreachable broker gives a transport/timeout error, not a hang")
    func unreachableBroker() async throws {
        // Port 1 on loopback: nothing listens there.
        let conf = KafkaConfiguration(brokers: "127.0.0.1:1", ["message.timeout.ms": "2000", "socket.connection.setup.timeout.ms": "1000"])
        let producer = try KafkaProducer(configuration: conf)
        let started = Date()
        await #expect {
            try await producer.send(OutgoingRecord(topic: "any", key: "k", value: [1]))
        } throws: { e in
            guard let k = e as? KafkaError else { return false }
            return k.code == .timedOut || k.code == .transport
        }
        #expect {
            try producer.partitionCount(topic: "any", timeout: .seconds(2))
        } throws: { e in
            guard let k = e as? KafkaError else { return false }
            return k.code == .timedOut || k.code == .transport
        }
        #expect(Date().timeIntervalSince(started) < 15)
        producer.close()
    }

    @Test("watermarks, seek and offsets-for-times on an assigned partition")
    func offsetsAndSeek() async throws {
        let topic = TestBroker.uniqueName("offsets")
        try TestBroker.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(configuration: TestBroker.config())
        for i in 0..<20 {
            _ = try await producer.send(OutgoingRecord(topic: topic, partition: 0, key: "k", value: Array("\(i)".utf8)))
        }
        let tp = TopicPartition(topic, 0)
        let reader = try KafkaConsumer(configuration: TestBroker.consumerConfig(), subscription: .assignment([tp: 5]))
        let wm = try reader.watermarks(tp)
        #expect(wm.low == 0 && wm.high == 20)
        let first = try await collect(reader, count: 15, within: 20)
        #expect(first.map(\.offset) == Array(5..<20))
        try reader.seek([tp: 2])
        let again = try await collect(reader, count: 3, within: 20)
        #expect(again.map(\.offset) == [2, 3, 4])
        let byTime = try reader.offsets(forTimes: [tp: 0])
        #expect(byTime[tp] == 0)
        await reader.close()
        producer.close()
    }

    @Test("a reader takes turns between partitions: all four appear among the first 1,200 of 8,000 records, each still in order")
    func partitionsTakeTurns() async throws {
        let topic = TestBroker.uniqueName("turns")
        try TestBroker.createTopic(topic, partitions: 4)
        let producer = try KafkaProducer(configuration: TestBroker.config())
        let value = Array(String(repeating: "v", count: 100).utf8)
        for p in Int32(0)..<4 {
            for i in 0..<2_000 {
                try producer.enqueue(OutgoingRecord(topic: topic, partition: p, key: "k\(i)", value: value)) { _ in }
            }
        }
        try await producer.flush(timeout: .seconds(30))
        let start = Dictionary(uniqueKeysWithValues: (Int32(0)..<4).map { (TopicPartition(topic, $0), KafkaOffset.beginning) })
        // A small buffer: records are taken from librdkafka a few hundred at a time.
        let reader = try KafkaConsumer(configuration: TestBroker.consumerConfig(), subscription: .assignment(start),
                                       bufferCapacity: 300)
        try await Task.sleep(nanoseconds: 1_000_000_000)  // every partition fetched meanwhile
        let records = try await collect(reader, count: 8_000, within: 60)
        // Through the one consumer queue (before partition queues) the records came in runs of
        // up to 2,000 of one partition, and the first 1,200 held two partitions.
        #expect(Set(records.prefix(1_200).map(\.partition)) == [0, 1, 2, 3])
        for p in Int32(0)..<4 {
            #expect(records.filter { $0.partition == p }.map(\.offset) == (0..<2_000).map(Int64.init))
        }
        await reader.close()
        producer.close()
    }

    @Test("pause stops delivery of a partition and resume restarts it")
    func pauseResume() async throws {
        let topic = TestBroker.uniqueName("pause")
        try TestBroker.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(configuration: TestBroker.config())
        let tp = TopicPartition(topic, 0)
        let reader = try KafkaConsumer(configuration: TestBroker.consumerConfig(), subscription: .assignment([tp: KafkaOffset.beginning]))
        try reader.pause([tp])
        for i in 0..<5 { _ = try await producer.send(OutgoingRecord(topic: topic, partition: 0, key: "k", value: [UInt8(i)])) }
        await #expect(throws: TestSetupError.self) { _ = try await collect(reader, count: 1, within: 1.5) }
        // collect() closed the reader on timeout; use a fresh one for the resume half.
        let reader2 = try KafkaConsumer(configuration: TestBroker.consumerConfig(), subscription: .assignment([tp: KafkaOffset.beginning]))
        try reader2.pause([tp])
        try reader2.resume([tp])
        let got = try await collect(reader2, count: 5, within: 20)
        #expect(got.map(\.offset) == [0, 1, 2, 3, 4])
        await reader2.close()
        producer.close()
    }

    @Test("admin creates topics with config and describes them; creating again says it exists")
    func admin() throws {
        let admin = try KafkaAdmin(configuration: TestBroker.config())
        let name = TestBroker.uniqueName("admin")
        let r = try admin.createTopics([TopicSpec(name: name, partitions: 3, config: ["cleanup.policy": "compact"])])
        #expect(r[name] == .some(nil))
        let again = try admin.createTopics([TopicSpec(name: name, partitions: 3)])
        #expect((again[name] ?? nil)?.isAlreadyExists == true)
        let d = try admin.describeTopics([name, TestBroker.uniqueName("absent")])
        #expect(d.count == 1)
        #expect(d[name]?.partitions == 3)
    }
}

func waitUntil(_ seconds: Double, _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() > deadline { throw TestSetupError("condition not met within \(seconds)s") }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
}

@Suite("reading to the end", .serialized)
struct ReadToEndTests {
    @Test("readToEnd returns every record, including the last produced batch, and returns at once for an empty partition")
    func readToEnd() async throws {
        let topic = TestBroker.uniqueName("toend")
        try TestBroker.createTopic(topic, partitions: 2)
        let producer = try KafkaProducer(configuration: TestBroker.config(["linger.ms": "50"]))
        for i in 0..<37 {
            try producer.enqueue(OutgoingRecord(topic: topic, partition: 0, key: "k", value: Array("\(i)".utf8))) { _ in }
        }
        try await producer.flush(timeout: .seconds(10))
        var seen: [Int64] = []
        let started = ContinuousClock.now
        try await KafkaConsumer.readToEnd(configuration: TestBroker.consumerConfig(),
                                          from: [TopicPartition(topic, 0): KafkaOffset.beginning,
                                                 TopicPartition(topic, 1): KafkaOffset.beginning],
                                          timeout: .seconds(20)) { seen.append($0.offset) }
        #expect(seen == Array(0..<37))
        #expect(ContinuousClock.now - started < .seconds(10))
        producer.close()
    }
}
