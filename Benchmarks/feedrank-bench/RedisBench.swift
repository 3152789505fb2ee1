import ArgumentParser
import Foundation
import RedisClient

/// Pipelined SET throughput (what the cache tiers do), 200-byte values.
struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis", abstract: "Pipelined SET throughput (commands/s).")

    @Option(help: "Redis URL.") var redis = "redis://127.0.0.1:16379"
    @Option(help: "SETs per run.") var requests = 500_000
    @Option(help: "Commands per pipeline (redis-benchmark -P).") var pipeline = 16
    @Option(help: "Value size in bytes.") var valueSize = 200
    @Option(help: "Repetitions (the median is reported).") var runs = 3

    func run() async throws {
        let client = try RedisClient(url: redis)
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueSize)
        var rates: [Double] = []
        for run in 0..<runs {
            let start = ContinuousClock.now
            var i = 0
            while i < requests {
                let n = min(pipeline, requests - i)
                let cmds = (0..<n).map { RedisCommand.set("bench:\((i + $0) % 100_000)", value, expireSeconds: 3600) }
                let replies = try client.pipelineSync(cmds)
                precondition(replies.count == n)
                i += n
            }
            let secs = (ContinuousClock.now - start).seconds
            rates.append(Double(requests) / secs)
            print(String(format: "run %d: %.0f SETs/s (pipeline %d)", run + 1, rates.last!, pipeline))
        }
        let out: [String: Any] = ["bench": "redis", "requests": requests, "pipeline": pipeline,
                                  "value_bytes": valueSize, "set_per_s_median": median(rates)]
        print(String(data: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), encoding: .utf8)!)
    }
}
