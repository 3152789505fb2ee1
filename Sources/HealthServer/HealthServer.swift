import Foundation
import Hummingbird
import Logging
import Prometheus
import Worker

/// The worker's HTTP face (Hummingbird): `GET /health`, `GET /ready`, `GET /metrics`
/// (Prometheus text) and `POST /rank` (the synchronous real-time gateway).
public enum HealthServer {
    public static let maxRequestBytes = 1 << 20

    public static func makeApplication(worker: StreamWorker, registry: PrometheusCollectorRegistry,
                                       host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("/health") { _, _ -> Response in
            let health = worker.health()
            let body = (try? JSONEncoder.sorted.encode(health)) ?? Data("{}".utf8)
            return json(health.phase == "stopped" ? .serviceUnavailable : .ok, Array(body))
        }
        router.get("/ready") { _, _ -> Response in
            let health = worker.health()
            return json(health.isReady ? .ok : .serviceUnavailable,
                        Array(#"{"ready":\#(health.isReady),"status":"\#(health.phase)"}"#.utf8))
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.post("/rank") { request, _ -> Response in
            let body = try await request.body.collect(upTo: maxRequestBytes)
            let result = await worker.rankHTTP(Array(buffer: body))
            return json(HTTPResponse.Status(code: result.status), result.body)
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
    }

    static func json(_ status: HTTPResponse.Status, _ bytes: [UInt8]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
