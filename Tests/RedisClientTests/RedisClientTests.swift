import Foundation
import RedisClient
import Testing

enum TestRedis {
    static var url: String {
        get throws {
            guard let u = ProcessInfo.processInfo.environment["FEEDRANK_TEST_REDIS"], !u.isEmpty else {
                throw RedisError(code: .configuration, message: "FEEDRANK_TEST_REDIS is not set: run the tests through scripts/test.sh (it starts Redis)")
            }
            return u
        }
    }

    static func prefix() -> String { "test:\(UInt64.random(in: 0...UInt64.max)):" }
}

@Suite("Redis adapter against a real redis-server", .serialized)
struct RedisClientTests {
    @Test("10,000 pipelined SETs with TTL, then one MGET returns every value; TTLs are set")
    func pipelinedSetsAndMget() async throws {
        let client = try RedisClient(url: TestRedis.url)
        let p = TestRedis.prefix()
        let n = 10_000
        let keys = (0..<n).map { "\(p)\($0)" }
        let start = ContinuousClock.now
        let replies = try await client.pipeline(keys.enumerated().map { i, k in
            .set(k, Array("value-\(i)".utf8), expireSeconds: 3600)
        })
        #expect(replies.count == n)
        #expect(replies.allSatisfy { $0 == .status("OK") })
        let values = try await client.mget(keys)
        #expect(values.count == n)
        for (i, v) in values.enumerated() { #expect(v == Array("value-\(i)".utf8)) }
        let ttls = try await client.pipeline(keys.prefix(100).map { .ttl($0) }).map { try $0.integer() }
        // Set to 3600 s: at most the time since the SETs were sent has run down (rounded up, +1 s).
        let elapsed = (ContinuousClock.now - start).components.seconds + 2
        #expect(ttls.allSatisfy { $0 >= 3600 - elapsed && $0 <= 3600 }, "TTLs \(ttls.prefix(5)) after \(elapsed) s")
        #expect(try await client.del(keys) == Int64(n))
        #expect(try await client.get(keys[0]) == nil)
    }

    @Test("binary values survive byte for byte (NUL, CR/LF, every byte value)")
    func binarySafe() async throws {
        let client = try RedisClient(url: TestRedis.url)
        let key = TestRedis.prefix() + "bin\0key\r\n"
        var value = [UInt8](0...255)
        value += [0, 13, 10, 0, 255]
        // Float32 little-endian, as the L2/L3 embedding tiers store them.
        value += [Float(1.5), -0.0, .greatestFiniteMagnitude].flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian, Array.init) }
        try await client.set(key, value, expireSeconds: 60)
        #expect(try await client.get(key) == value)
        try await client.set(key + "empty", [])
        #expect(try await client.get(key + "empty") == [])
        try await client.del([key, key + "empty"])
    }

    @Test("EXPIRE, ZADD, ZRANGEBYSCORE and ZREMRANGEBYSCORE")
    func sortedSetsAndExpire() async throws {
        let client = try RedisClient(url: TestRedis.url)
        let key = TestRedis.prefix() + "z"
        #expect(try await client.zadd(key, [(1, Array("a".utf8)), (2.5, Array("b".utf8)), (10, Array("c".utf8))]) == 3)
        #expect(try await client.zrangebyscore(key, min: "2", max: "+inf") == [Array("b".utf8), Array("c".utf8)])
        #expect(try await client.zremrangebyscore(key, min: "-inf", max: "(3") == 2)
        #expect(try await client.zrangebyscore(key, min: "-inf", max: "+inf") == [Array("c".utf8)])
        #expect(try await client.expire(key, seconds: 100))
        let ttl = try await client.ttl(key)
        #expect(ttl > 95 && ttl <= 100)
        // A server error comes back as an error, naming the problem.
        let bad = try await client.pipeline([RedisCommand("GET", [key])])
        #expect(throws: RedisError.self) { try bad[0].bytes() }
        try await client.del([key])
    }

    @Test("database selection from the URL isolates keys")
    func databaseSelection() async throws {
        let base = try TestRedis.url
        let db3 = try RedisClient(url: base + "/3")
        let db0 = try RedisClient(url: base + "/0")
        let key = TestRedis.prefix() + "db"
        try await db3.set(key, [1, 2, 3], expireSeconds: 60)
        #expect(try await db3.get(key) == [1, 2, 3])
        #expect(try await db0.get(key) == nil)
        try await db3.del([key])
    }

    @Test("bad URLs fail fast naming the problem")
    func badURL() throws {
        #expect { try RedisConfiguration(url: "http://x:1") } throws: { "\($0)".contains("expected redis://") }
        #expect { try RedisConfiguration(url: "redis://h:1/abc") } throws: { "\($0)".contains("database 'abc'") }
        #expect(try RedisConfiguration(url: "redis://:s3cret@127.0.0.1:7000/2")
                == RedisConfiguration(host: "127.0.0.1", port: 7000, database: 2, password: "s3cret"))
    }

    @Test("AUTH with a wrong password is a clear, non-retryable error")
    func authFailure() async throws {
        let server = try OwnedRedisServer(extraArgs: ["--requirepass", "right"])
        defer { server.stop() }
        let wrong = RedisClient(configuration: RedisConfiguration(port: server.port, password: "wrong"))
        await #expect { try await wrong.get("k") } throws: { e in
            guard let r = e as? RedisError else { return false }
            return r.code == .server && r.message.contains("AUTH")
        }
        let right = RedisClient(configuration: RedisConfiguration(port: server.port, password: "right"))
        try await right.set("k", [7])
        #expect(try await right.get("k") == [7])
    }

    @Test("a Redis restart mid-run is survived: calls fail fast while it is down, then reconnect")
    func reconnectAfterRestart() async throws {
        let server = try OwnedRedisServer()
        defer { server.stop() }
        let client = RedisClient(configuration: RedisConfiguration(
            port: server.port, connectTimeout: .milliseconds(300), commandTimeout: .milliseconds(500),
            minBackoff: .milliseconds(20), maxBackoff: .milliseconds(200)))
        try await client.set("before", [1])
        server.stop()
        var failures = 0
        let started = Date()
        for _ in 0..<5 {
            do { _ = try await client.get("before") } catch let e as RedisError {
                #expect(e.isRetryable)
                failures += 1
            }
        }
        #expect(failures == 5)
        #expect(Date().timeIntervalSince(started) < 3, "calls against a dead server must fail fast")
        try server.start()
        let deadline = Date().addingTimeInterval(10)
        var recovered = false
        while Date() < deadline {
            if (try? await client.set("after", [2])) != nil { recovered = true; break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(recovered)
        #expect(try await client.get("after") == [2])
        #expect(client.isConnected)
    }
}

/// A redis-server this test starts on a free loopback port and stops by its PID.
final class OwnedRedisServer: @unchecked Sendable {
    let port: Int
    let extraArgs: [String]
    private var process: Process?

    init(extraArgs: [String] = []) throws {
        self.port = Int.random(in: 20000...29999)
        self.extraArgs = extraArgs
        try start()
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        p.arguments = ["--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no"] + extraArgs
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Wait until it accepts connections.
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if (try? RedisClient(configuration: RedisConfiguration(port: port, password: extraArgs.last))
                .pipelineSync([RedisCommand("PING", [])])) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw RedisError(code: .connection, message: "test redis-server on port \(port) did not start")
    }

    /// SIGKILL (a crash, as far as clients can tell). The child may inherit a mask that
    /// blocks SIGTERM from the test runner's threads, so SIGTERM is not reliable here.
    func stop() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }
}
