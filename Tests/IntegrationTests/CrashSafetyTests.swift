import Foundation
import KafkaClient
import Ranking
import RankingModel
import TestSupport
import Testing

/// A `feedrank serve` process this test starts, and SIGKILLs, by PID.
final class ServeProcess: @unchecked Sendable {
    private let process = Process()

    init(_ h: WorkerHarness, httpPort: Int = 0) throws {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [dir.appendingPathComponent("feedrank"), dir.deletingLastPathComponent().appendingPathComponent("feedrank")]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw HarnessError("the feedrank binary is not built next to the tests (\(dir.path)); run scripts/test.sh")
        }
        process.executableURL = binary
        process.arguments = [
            "serve", "--bundle", h.bundleDir.path, "--brokers", h.brokers, "--redis", h.redisURL, "--group", h.group,
            "--http-port", String(httpPort), "--http-host", "127.0.0.1", "--log-level", "error", "--lanes", "2", "--refresh-window-ms", "100",
            "--activity-topic", h.topics.activity, "--requests-topic", h.topics.requests,
            "--responses-topic", h.topics.responses, "--dlq-topic", h.topics.deadLetter, "--state-topic", h.topics.state,
            "--kafka", "fetch.wait.max.ms=10", "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    /// SIGTERM, then the exit status (nil if it did not exit within `seconds`).
    func terminate(within seconds: Double) async throws -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(nanoseconds: 50_000_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

@Suite("crash safety", .serialized)
struct CrashSafetyTests {
    @Test("SIGKILLed under load 3 times and restarted: every user's state equals applying the log once, and every request has a response")
    func killUnderLoad() async throws {
        let h = try WorkerHarness(redisDB: 6)
        let responses = try WorkerHarness.Tail(h, topic: h.topics.responses)
        var worker = try ServeProcess(h)
        let producer = try h.producer()
        let activityCount = 6000, requestCount = 600
        let sender = Task {
            var rng = SeededRandom(seed: 21)
            for i in 0..<activityCount {
                let user = Int64(1 + rng.next() % 400)
                let item = h.bundle.items[Int(rng.next() % UInt64(h.bundle.itemCount))].id
                try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.activity, key: String(user),
                    value: h.activity(user, item: item, [.click, .impression, .impression, .like, .hide][i % 5],
                                      ts: h.spec.now + Int64(i), id: "k\(i)")))
                if i % 10 == 0 {
                    let r = i / 10
                    try await enqueueRetrying(producer, OutgoingRecord(topic: h.topics.requests, key: String(user),
                        value: h.request("q\(r)", user: user, numItems: 20)))
                }
                if i % 50 == 0 { try await Task.sleep(nanoseconds: 150_000_000) }  // ~20 s of traffic
            }
            try await producer.flush(timeout: .seconds(60))
        }
        var rng = SeededRandom(seed: 99)
        for kill in 1...3 {
            try await Task.sleep(nanoseconds: UInt64(2_000_000_000 + rng.next() % 4_000_000_000))
            #expect(worker.isRunning, "the worker died on its own before kill \(kill)")
            worker.kill9()
            worker = try ServeProcess(h)
        }
        try await sender.value
        try await waitFor(240, "the restarted worker to commit every record") { try await h.allCommitted() }
        try await Task.sleep(nanoseconds: 1_000_000_000)
        worker.kill9()

        let expected = try await h.expectedStates()
        let actual = try await h.latestStates()
        #expect(expected.count > 300)
        #expect(actual.count == expected.count)
        var wrong = 0
        for (user, s) in expected where actual[user] != s { wrong += 1 }
        #expect(wrong == 0, "\(wrong) users' states differ from applying the activity log once")
        let ids = Set(responses.records.withLock { $0.compactMap { try? RankingResponse.parse($0.value) }.compactMap(\.requestId) })
        #expect(ids.count == requestCount, "\(requestCount - ids.count) requests without a response")
        responses.stop()
        producer.close()
    }
}
