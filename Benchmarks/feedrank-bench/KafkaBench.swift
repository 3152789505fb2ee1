import ArgumentParser
import Foundation
import KafkaClient
import Synchronization

/// Producer and consumer throughput through a broker, 200-byte JSON values.
struct KafkaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka", abstract: "Producer and consumer throughput (records/s) through a broker.")

    @Option(help: "Broker list.") var brokers = "127.0.0.1:19092"
    @Option(help: "Records per run.") var records = 200_000
    @Option(help: "Partitions of the benchmark topic.") var partitions = 4
    @Option(help: "Value size in bytes (JSON).") var valueSize = 200
    @Option(help: "Repetitions (the median is reported).") var runs = 3

    func run() async throws {
        var produceRates: [Double] = []
        var consumeRates: [Double] = []
        for run in 0..<runs {
            let topic = "bench-\(UInt32.random(in: 0...UInt32.max))"
            let admin = try KafkaAdmin(configuration: KafkaConfiguration(brokers: brokers))
            _ = try admin.createTopics([TopicSpec(name: topic, partitions: partitions)])
            let producer = try KafkaProducer(configuration: KafkaConfiguration(brokers: brokers, ["linger.ms": "5"]))
            let values = (0..<64).map { i -> [UInt8] in
                let head = #"{"event_id":"e-\#(i)","user_id":\#(i),"item_id":9001,"action":"click","ts":1795700000000,"pad":""#
                return Array((head + String(repeating: "x", count: max(0, valueSize - head.count - 2)) + "\"}").utf8)
            }
            let failures = Atomic<Int>(0)
            let start = ContinuousClock.now
            for i in 0..<records {
                let rec = OutgoingRecord(topic: topic, key: String(i % 10_000), value: values[i % values.count])
                try await producer.enqueueWaiting(rec) { r in if case .failure = r { failures.add(1, ordering: .relaxed) } }
            }
            try await producer.flush(timeout: .seconds(120))
            let produceSecs = (ContinuousClock.now - start).seconds
            producer.close()
            guard failures.load(ordering: .relaxed) == 0 else { throw ValidationError("\(failures.load(ordering: .relaxed)) deliveries failed") }

            let tps = (0..<partitions).map { TopicPartition(topic, Int32($0)) }
            let consumer = try KafkaConsumer(
                configuration: KafkaConfiguration(brokers: brokers, ["fetch.wait.max.ms": "10"]),
                subscription: .assignment(Dictionary(uniqueKeysWithValues: tps.map { ($0, KafkaOffset.beginning) })))
            let cstart = ContinuousClock.now
            var n = 0
            for try await _ in consumer.records {
                n += 1
                if n == records { break }
            }
            let consumeSecs = (ContinuousClock.now - cstart).seconds
            await consumer.close()
            produceRates.append(Double(records) / produceSecs)
            consumeRates.append(Double(records) / consumeSecs)
            print(String(format: "run %d: produce %.0f records/s, consume %.0f records/s", run + 1,
                         produceRates.last!, consumeRates.last!))
        }
        let out: [String: Any] = [
            "bench": "kafka", "records": records, "value_bytes": valueSize, "partitions": partitions,
            "produce_records_per_s_median": median(produceRates), "consume_records_per_s_median": median(consumeRates),
        ]
        print(String(data: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), encoding: .utf8)!)
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
