/// The RankingModel module's one error type: a code, a message that names the culprit (the
/// file, tensor, line or field), and whether retrying the same operation can help.
///
/// Bundle problems (`missingFile` ... `badItems`) come from `ModelBundle.load`; `invalidEvent`
/// from `ActivityEvent.parse` (the worker puts the message on the DLQ); `invalidState` from
/// `UserState.decode`; `userMismatch` from `StateUpdater.apply`.
public struct ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// A bundle file does not exist.
        case missingFile
        /// A bundle file exists but could not be read or mapped (I/O).
        case unreadableFile
        /// manifest.json is malformed or inconsistent.
        case badManifest
        /// weights.safetensors is malformed: header, dtype, shape, offsets, truncation.
        case badTensor
        /// A weight or embedding holds NaN/inf, or embeddings are not unit length.
        case badValues
        /// items.jsonl is malformed or disagrees with the embedded items.
        case badItems
        /// A `user-activity` record failed to parse or validate.
        case invalidEvent
        /// A user-state JSON document failed to parse or validate.
        case invalidState
        /// An event was applied to another user's state.
        case userMismatch
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Only I/O failures may go away on retry; malformed data stays malformed.
    public var isRetryable: Bool { code == .unreadableFile }

    public var description: String { message }
}
