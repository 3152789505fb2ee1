import CHiredis
import Glibc

/// The one owner of a hiredis `redisContext`: connect (AUTH, SELECT), send pipelines,
/// read replies, free in `deinit`. Blocking and not thread-safe: `RedisClient` serialises
/// access on its own queue (hence `@unchecked Sendable`: it is only ever used there). Replies are copied into Swift values before hiredis frees them.
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>

    init(_ config: RedisConfiguration) throws {
        guard let ctx = redisConnectWithTimeout(config.host, Int32(config.port), makeTimeval(config.connectTimeout)) else {
            throw RedisError(code: .connection, message: "cannot allocate a connection to \(config.redactedURL)")
        }
        if ctx.pointee.err != 0 {
            let msg = Self.errorString(ctx)
            redisFree(ctx)
            throw RedisError(code: .connection, message: "connect to \(config.redactedURL): \(msg)")
        }
        context = ctx
        _ = redisSetTimeout(ctx, makeTimeval(config.commandTimeout))
        var setup: [RedisCommand] = []
        if let password = config.password {
            setup.append(RedisCommand("AUTH", (config.username.map { [$0] } ?? []) + [password]))
        }
        if config.database != 0 { setup.append(RedisCommand("SELECT", [String(config.database)])) }
        if !setup.isEmpty {
            for (cmd, reply) in zip(setup, try pipeline(setup)) {
                if case .error(let e) = reply {
                    throw RedisError(code: .server, message: "\(cmd.name) on \(config.redactedURL): \(e)", isRetryable: false)
                }
            }
        }
    }

    deinit {
        redisFree(context)
    }

    /// Sends every command in one write and reads every reply (one round trip).
    /// Throws `.connection` on I/O errors; the connection is unusable afterwards.
    func pipeline(_ commands: [RedisCommand]) throws -> [RedisReply] {
        for cmd in commands { try append(cmd) }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw RedisError(code: .connection, message: Self.errorString(context))
            }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    private func append(_ cmd: RedisCommand) throws {
        // One contiguous copy of the arguments; hiredis formats them into its buffer at once.
        let args = cmd.arguments
        var flat: [UInt8] = []
        flat.reserveCapacity(args.reduce(0) { $0 + $1.count })
        var offsets: [Int] = []
        offsets.reserveCapacity(args.count)
        for a in args { offsets.append(flat.count); flat.append(contentsOf: a) }
        let lengths = args.map(\.count)
        let rc: Int32 = flat.withUnsafeBufferPointer { buf in
            let base = UnsafeRawPointer(buf.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var argv: [UnsafePointer<CChar>?] = offsets.map { (base + $0).assumingMemoryBound(to: CChar.self) }
            return lengths.withUnsafeBufferPointer { lens in
                argv.withUnsafeMutableBufferPointer { av in
                    redisAppendCommandArgv(context, Int32(args.count), av.baseAddress, lens.baseAddress)
                }
            }
        }
        if rc != REDIS_OK { throw RedisError(code: .connection, message: Self.errorString(context)) }
    }

    private static func convert(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = r.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .string(reply.str.map { Array(UnsafeRawBufferPointer(start: $0, count: reply.len)) } ?? [])
        case REDIS_REPLY_STATUS:
            return .status(reply.str.map { String(cString: $0) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(reply.str.map { String(cString: $0) } ?? "unknown error")
        case REDIS_REPLY_INTEGER:
            return .integer(reply.integer)
        case REDIS_REPLY_ARRAY:
            return .array((0..<reply.elements).map { convert(reply.element[$0]!) })
        default:
            return .null
        }
    }

    private static func errorString(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        let s = withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return s.isEmpty ? "connection error \(ctx.pointee.err)" : s
    }

}

private func makeTimeval(_ d: Duration) -> Glibc.timeval {
    let c = d.components
    return Glibc.timeval(tv_sec: Int(c.seconds), tv_usec: Int(c.attoseconds / 1_000_000_000_000))
}
