/// The one error type of the VectorIndex module: a code, a message naming the culprit (file,
/// field, argument), and whether retrying the same call can help.
public struct VectorIndexError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A caller passed an argument the index cannot use (shape, range, state).
        case invalidArgument
        /// The index must be trained before this call.
        case notTrained
        /// A file could not be opened, read, written or mapped.
        case io
        /// A file is not what it claims to be: bad magic, truncated, checksum mismatch.
        case corruptFile
        /// A well-formed file that this build cannot use (version, dimension, configuration).
        case incompatibleFile
    }

    public let code: Code
    public let message: String
    /// True when the same call may succeed later (e.g. a transient I/O failure).
    public let isRetryable: Bool

    public init(_ code: Code, _ message: String, retryable: Bool = false) {
        self.code = code
        self.message = message
        self.isRetryable = retryable
    }

    public var description: String { message }

    static func invalid(_ message: String) -> VectorIndexError { .init(.invalidArgument, message) }
}
