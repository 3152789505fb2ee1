import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KafkaClient
import RankingModel
import TestSupport
import Testing

/// `feedrank serve`'s HTTP face, through a real process, broker and Redis.
@Suite("HTTP: health, readiness, metrics and POST /rank", .serialized)
struct HTTPTests {
    @Test("/ready and /health report the loaded model and Kafka; POST /rank answers ok (and 400 for bad JSON); /metrics counts applied events and requests; SIGTERM exits 0")
    func httpSurface() async throws {
        let h = try WorkerHarness(redisDB: 7)
        let port = try freeLoopbackPort()
        let worker = try ServeProcess(h, httpPort: port)
        let base = "http://127.0.0.1:\(port)"
        defer { worker.kill9() }

        try await waitFor(90, "GET /ready to answer 200") { (try? await http("GET", "\(base)/ready"))?.status == 200 }
        let health = try await http("GET", "\(base)/health")
        #expect(health.status == 200)
        let hj = try JSONSerialization.jsonObject(with: Data(health.body)) as! [String: Any]
        #expect(hj["model_loaded"] as? Bool == true)
        #expect(hj["item_count"] as? Int == h.bundle.itemCount)
        #expect(hj["model_version"] as? String == h.bundle.manifest.modelVersion)
        #expect(hj["kafka"] as? String == "ok")
        #expect(hj["status"] as? String == "running")

        let ranked = try await http("POST", "\(base)/rank", body: #"{"request_id":"h-1","user_id":5,"num_items":10}"#)
        #expect(ranked.status == 200)
        let rj = try JSONSerialization.jsonObject(with: Data(ranked.body)) as! [String: Any]
        #expect(rj["status"] as? String == "ok")
        #expect(rj["request_id"] as? String == "h-1")
        #expect((rj["items"] as? [Any])?.count == 10)
        let bad = try await http("POST", "\(base)/rank", body: "{not json")
        #expect(bad.status == 400)
        let bj = try JSONSerialization.jsonObject(with: Data(bad.body)) as! [String: Any]
        #expect(bj["status"] as? String == "error")

        // 200 activity events through Kafka: the applied counter reaches exactly 200.
        let producer = try h.producer()
        for i in 0..<200 {
            let user = Int64(1 + i % 20)
            let item = h.bundle.items[(i * 7) % h.bundle.itemCount].id
            try producer.enqueue(OutgoingRecord(topic: h.topics.activity, key: String(user),
                value: h.activity(user, item: item, i % 3 == 0 ? .click : .impression, ts: h.spec.now + Int64(i), id: "h\(i)"))) { _ in }
        }
        try await producer.flush(timeout: .seconds(30))
        var metrics: [String: Double] = [:]
        try await waitFor(60, "feedrank_events_applied_total to reach 200") {
            metrics = parseMetrics(try await http("GET", "\(base)/metrics").body)
            return metrics["feedrank_events_applied_total"] == 200
        }
        #expect(metrics["feedrank_events_applied_total"] == 200)
        #expect((metrics["ranking_requests_total"] ?? 0) >= 1)
        #expect((metrics["predictions_total"] ?? 0) > 0)
        #expect(metrics["feedrank_in_flight_records"] != nil)
        #expect(metrics["feedrank_uncommitted_records"] != nil)
        #expect(metrics.keys.contains { $0.hasPrefix("ranking_latency_seconds") })
        producer.close()

        #expect(try await worker.terminate(within: 40) == 0)
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (bind to 0, read it back).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard bound else { throw HarnessError("bind() failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

func http(_ method: String, _ url: String, body: String? = nil) async throws -> (status: Int, body: [UInt8]) {
    var request = URLRequest(url: URL(string: url)!, timeoutInterval: 10)
    request.httpMethod = method
    if let body { request.httpBody = Data(body.utf8); request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data))
}

/// Prometheus text: sample name (with labels) -> value.
func parseMetrics(_ text: [UInt8]) -> [String: Double] {
    var out: [String: Double] = [:]
    for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
        out[String(line[..<space])] = v
    }
    return out
}
