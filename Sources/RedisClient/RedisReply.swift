/// A Redis reply, copied out of hiredis's reply object.
public enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    case error(String)

    /// Bulk string bytes, or nil for a null reply.
    public func bytes() throws -> [UInt8]? {
        switch self {
        case .string(let b): return b
        case .null: return nil
        case .error(let e): throw RedisError(code: .server, message: e)
        default: throw RedisError(code: .protocolMismatch, message: "expected a bulk string, got \(self)")
        }
    }

    public func integer() throws -> Int64 {
        switch self {
        case .integer(let i): return i
        case .error(let e): throw RedisError(code: .server, message: e)
        default: throw RedisError(code: .protocolMismatch, message: "expected an integer, got \(self)")
        }
    }

    public func array() throws -> [RedisReply] {
        switch self {
        case .array(let a): return a
        case .null: return []
        case .error(let e): throw RedisError(code: .server, message: e)
        default: throw RedisError(code: .protocolMismatch, message: "expected an array, got \(self)")
        }
    }

    /// Throws the server's error reply; otherwise returns self.
    @discardableResult
    public func checked() throws -> RedisReply {
        if case .error(let e) = self { throw RedisError(code: .server, message: e) }
        return self
    }
}
