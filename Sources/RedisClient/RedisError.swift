/// The one error type of the Redis adapter.
public struct RedisError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        /// Bad URL or option.
        case configuration
        /// Could not connect, or the connection broke (I/O error, EOF, timeout).
        case connection
        /// Not connected and still backing off before the next reconnect attempt.
        case unavailable
        /// The server answered with an error reply (e.g. WRONGTYPE, NOAUTH).
        case server
        /// The reply had an unexpected shape for the typed command.
        case protocolMismatch
    }

    public let code: Code
    public let message: String
    public let isRetryable: Bool

    public init(code: Code, message: String, isRetryable: Bool? = nil) {
        self.code = code
        self.message = message
        self.isRetryable = isRetryable ?? (code == .connection || code == .unavailable)
    }

    public var description: String { "Redis: \(message)" }
}
