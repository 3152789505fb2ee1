import ArgumentParser
import Foundation
import KafkaClient
import Ranking
import RankingModel
import Synchronization
import Worker

/// Fixtures for scripts/bench-batch.sh and scripts/check-replay-identity.sh (issue 7): a world's
/// activity log into a topic, more users for the batch by cloning the states in a changelog, the
/// ranking index built once (the one `serve` builds at start) so each command of the run loads it
/// instead, waiting for a group to commit a whole topic, and comparing two changelogs' states.
struct BatchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch", abstract: "Fixtures of the replay/batch benchmark (scripts/bench-batch.sh).",
        subcommands: [ProduceEvents.self, CloneStates.self, BuildIndex.self, WaitCommitted.self, CompareStates.self])

    /// Produces the first N records of a user-activity JSON-lines file, key = user_id, record
    /// timestamp = the event's ts (so replay --from/--until see the world's times).
    struct ProduceEvents: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "produce-events")
        @Option(help: "Broker list.") var brokers = "127.0.0.1:19092"
        @Option(help: "Topic to produce to.") var topic: String
        @Option(help: "user-activity JSON lines (e.g. data/world-1m/events.jsonl).") var events: String
        @Option(help: "Records to produce (default: all).") var limit: Int?

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: events) else { throw ValidationError("--events \(events): cannot read") }
            let producer = try KafkaProducer(configuration: KafkaConfiguration(brokers: brokers, ["linger.ms": "5"]))
            let failures = Atomic<Int>(0)
            let start = ContinuousClock.now
            var n = 0
            for line in data.split(separator: UInt8(ascii: "\n")) {
                if let limit, n >= limit { break }
                let bytes = Array(line)
                let e: ActivityEvent
                do { e = try ActivityEvent.parse(bytes) } catch { throw ValidationError("\(events) record \(n + 1): \(error.message)") }
                let rec = OutgoingRecord(topic: topic, key: String(e.userId), value: bytes, timestamp: e.ts)
                try await producer.enqueueWaiting(rec) { r in if case .failure = r { failures.add(1, ordering: .relaxed) } }
                n += 1
            }
            try await producer.flush(timeout: .seconds(300))
            producer.close()
            guard failures.load(ordering: .relaxed) == 0 else { throw ValidationError("\(failures.load(ordering: .relaxed)) deliveries failed") }
            let secs = (ContinuousClock.now - start).seconds
            print("produced \(n) records to \(topic) in \(String(format: "%.1f", secs)) s (\(Int(Double(n) / secs)) records/s)")
        }
    }

    /// Reads the latest state per user of a changelog and writes `copies` more copies of each
    /// under new user ids (id + k * stride), each to its key's murmur2 partition with a source
    /// position of that partition, and the model_version header of the original.
    struct CloneStates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clone-states")
        @Option(help: "Broker list.") var brokers = "127.0.0.1:19092"
        @Option(help: "The user-state topic.") var topic: String
        @Option(help: "Model bundle (the manifest checks the states).") var bundle: String
        @Option(help: "Copies to add per user.") var copies = 4
        @Option(help: "User id offset between copies.") var stride: Int64 = 1_000_000

        func run() async throws {
            let b = try ModelBundle.load(directory: bundle)
            let kafka = KafkaConfiguration(brokers: brokers, ["fetch.wait.max.ms": "10"])
            guard let partitions = try PartitionScan.partitionCounts(kafka: kafka)[topic] else { throw ValidationError("no topic \(topic)") }
            let snapshot = try await StateSnapshot.read(kafka: kafka, topic: topic, partitions: (0..<Int32(partitions)).map { $0 },
                                                        manifest: b.manifest, logger: .init(label: "clone"))
            let producer = try KafkaProducer(configuration: KafkaConfiguration(brokers: brokers, ["linger.ms": "5"]))
            let failures = Atomic<Int>(0)
            var n = 0
            for users in snapshot.partitions.values {
                for entry in users.values {
                    for k in 1...max(1, copies) {
                        var s = entry.state
                        s.userId += Int64(k) * stride
                        let key = String(s.userId)
                        let p = KafkaPartitioner.partition(forKey: key, partitionCount: partitions)
                        s.source = SourcePosition(partition: p, offset: s.source?.offset ?? 0)
                        let rec = OutgoingRecord(topic: topic, partition: p, key: key, value: s.jsonBytes(),
                                                 headers: entry.modelVersion.map { [KafkaHeader(key: ModelVersionCheck.header, string: $0)] } ?? [])
                        try await producer.enqueueWaiting(rec) { r in if case .failure = r { failures.add(1, ordering: .relaxed) } }
                        n += 1
                    }
                }
            }
            try await producer.flush(timeout: .seconds(300))
            producer.close()
            guard failures.load(ordering: .relaxed) == 0 else { throw ValidationError("\(failures.load(ordering: .relaxed)) deliveries failed") }
            print("cloned \(snapshot.userCount) states x\(copies): \(n) new states in \(topic)")
        }
    }

    /// Builds the index ranking uses (`RankingIndexBuilder`, as serve/replay/batch build it at
    /// start) and saves it for `--index`.
    struct BuildIndex: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "build-index")
        @Option(help: "Model bundle directory.") var bundle: String
        @Option(help: "Index file to write.") var out: String

        func run() throws {
            let b = try ModelBundle.load(directory: bundle)
            let start = ContinuousClock.now
            guard let index = try RankingIndexBuilder.buildIfUseful(bundle: b) else {
                throw ValidationError("\(bundle): too few items for an index")
            }
            try index.save(to: out)
            print("index for \(bundle): IVF\(index.nlist), \(index.count) organic items, built in \(String(format: "%.1f", (ContinuousClock.now - start).seconds)) s")
        }
    }

    /// Waits until `group` has committed the end offset of every partition of `topic` (the
    /// live worker has processed, and acknowledged every output of, the whole log).
    struct WaitCommitted: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "wait-committed")
        @Option(help: "Broker list.") var brokers = "127.0.0.1:19092"
        @Option(help: "The input topic.") var topic: String
        @Option(help: "The consumer group.") var group: String
        @Option(help: "Give up after this many seconds.") var timeout = 1800

        func run() async throws {
            let kafka = KafkaConfiguration(brokers: brokers, ["fetch.wait.max.ms": "10"])
            let ranges = try BatchBench.wholeTopic(topic, kafka)
            let tps = Array(ranges.keys)
            // Tansu's ListOffsets stops at the last batch's base offset: read to the true ends.
            let ends = try await PartitionScan.read(kafka: kafka, ranges: ranges) { _, _ in .next }
            let probe = try KafkaConsumer(configuration: kafka.merging(["group.id": group]), subscription: .assignment([:]))
            defer { probe.close() }
            let total = ends.values.reduce(0, +)
            let start = ContinuousClock.now
            var lastReport = start
            while true {
                let committed = try probe.committed(tps)
                let done = tps.reduce(Int64(0)) { $0 + ((committed[$1] ?? nil) ?? 0) }
                if tps.allSatisfy({ ends[$0, default: 0] == 0 || (committed[$0] ?? nil) == ends[$0] }) {
                    print("group \(group) committed all \(total) records of \(topic) after \(String(format: "%.1f", (ContinuousClock.now - start).seconds)) s")
                    return
                }
                if (ContinuousClock.now - start).seconds > Double(timeout) {
                    throw ValidationError("group \(group): \(done) of \(total) records of \(topic) committed after \(timeout) s")
                }
                if (ContinuousClock.now - lastReport).seconds >= 15 {
                    FileHandle.standardError.write(Data("wait-committed: group=\(group) done=\(done) total=\(total) elapsed_s=\(Int((ContinuousClock.now - start).seconds))\n".utf8))
                    lastReport = ContinuousClock.now
                }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Reads the latest state record per user of two user-state changelogs (the newest source
    /// offset wins within a topic, as restore does) and compares their values byte for byte.
    /// Exits non-zero unless both hold the same users with identical bytes.
    struct CompareStates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "compare-states")
        @Option(help: "Broker list.") var brokers = "127.0.0.1:19092"
        @Option(help: "One user-state topic (e.g. the live worker's).") var left: String
        @Option(help: "The other (e.g. replay's).") var right: String

        func latest(_ topic: String, _ kafka: KafkaConfiguration) async throws -> [Int64: [UInt8]] {
            let ranges = try BatchBench.wholeTopic(topic, kafka)
            var out: [Int64: (value: [UInt8], source: SourcePosition?)] = [:]
            var records: [(Int32, Int64, [UInt8])] = []
            try await PartitionScan.read(kafka: kafka, ranges: ranges) { r, _ in
                if !r.value.isEmpty { records.append((r.partition, r.offset, r.value)) }
                return .next
            }
            records.sort { ($0.0, $0.1) < ($1.0, $1.1) }
            for (_, _, value) in records {
                let s = try UserState.decode(value)
                if let old = out[s.userId], let a = old.source, let b = s.source, a.partition == b.partition, b.offset < a.offset { continue }
                out[s.userId] = (value, s.source)
            }
            return out.mapValues(\.value)
        }

        func run() async throws {
            let kafka = KafkaConfiguration(brokers: brokers, ["fetch.wait.max.ms": "10"])
            let a = try await latest(left, kafka), b = try await latest(right, kafka)
            let identical = a.filter { b[$0.key] == $0.value }.count
            let differ = a.filter { b[$0.key] != nil && b[$0.key] != $0.value }.count
            let onlyLeft = a.keys.filter { b[$0] == nil }.count, onlyRight = b.keys.filter { a[$0] == nil }.count
            print("states: \(left) \(a.count) users, \(right) \(b.count) users; byte-identical \(identical), different \(differ), only in \(left) \(onlyLeft), only in \(right) \(onlyRight)")
            guard identical == a.count, a.count == b.count else { throw ExitCode(1) }
        }
    }

    /// Every partition of `topic`, from its low watermark to its high watermark as ListOffsets
    /// reports it (`PartitionScan.read` reads on to the true end).
    static func wholeTopic(_ topic: String, _ kafka: KafkaConfiguration) throws -> [TopicPartition: PartitionScan.Range] {
        guard let n = try PartitionScan.partitionCounts(kafka: kafka)[topic] else { throw ValidationError("no topic \(topic)") }
        let marks = try PartitionScan.watermarks(kafka: kafka, (0..<Int32(n)).map { TopicPartition(topic, $0) })
        return marks.mapValues { PartitionScan.Range(start: $0.low, end: $0.high) }
    }
}
