/// One command as binary-safe arguments.
public struct RedisCommand: Sendable, Equatable {
    public var arguments: [[UInt8]]

    public init(_ arguments: [[UInt8]]) {
        precondition(!arguments.isEmpty, "a Redis command needs a name")
        self.arguments = arguments
    }

    public init(_ name: String, _ args: [String]) {
        self.init([Array(name.utf8)] + args.map { Array($0.utf8) })
    }

    public var name: String { String(decoding: arguments[0], as: UTF8.self) }

    public static func get(_ key: String) -> RedisCommand { RedisCommand("GET", [key]) }

    /// SET with an optional expiry in seconds (EX).
    public static func set(_ key: String, _ value: [UInt8], expireSeconds: Int? = nil) -> RedisCommand {
        var a: [[UInt8]] = [Array("SET".utf8), Array(key.utf8), value]
        if let ex = expireSeconds { a += [Array("EX".utf8), Array(String(ex).utf8)] }
        return RedisCommand(a)
    }

    public static func mget(_ keys: [String]) -> RedisCommand { RedisCommand("MGET", keys) }
    public static func del(_ keys: [String]) -> RedisCommand { RedisCommand("DEL", keys) }
    public static func expire(_ key: String, seconds: Int) -> RedisCommand { RedisCommand("EXPIRE", [key, String(seconds)]) }
    public static func ttl(_ key: String) -> RedisCommand { RedisCommand("TTL", [key]) }

    public static func zadd(_ key: String, _ members: [(score: Double, member: [UInt8])]) -> RedisCommand {
        var a: [[UInt8]] = [Array("ZADD".utf8), Array(key.utf8)]
        for m in members { a.append(Array(scoreString(m.score).utf8)); a.append(m.member) }
        return RedisCommand(a)
    }

    /// ZRANGEBYSCORE key min max [WITHSCORES]; bounds use Redis syntax ("-inf", "(5", "10").
    public static func zrangebyscore(_ key: String, min: String, max: String, withScores: Bool = false) -> RedisCommand {
        RedisCommand("ZRANGEBYSCORE", [key, min, max] + (withScores ? ["WITHSCORES"] : []))
    }

    public static func zremrangebyscore(_ key: String, min: String, max: String) -> RedisCommand {
        RedisCommand("ZREMRANGEBYSCORE", [key, min, max])
    }

    static func scoreString(_ d: Double) -> String {
        if d == .infinity { return "+inf" }
        if d == -.infinity { return "-inf" }
        return d.description
    }
}
