import RankingModel
import RedisClient

/// Which model the existing user states belong to. The state JSON has no model_version field
/// (contract section 2), so the evidence is:
/// 1. the `model_version` header of the latest `user-state` record of each user (written by
///    the live worker, replay and batch alike); records without it (older writers) say nothing;
/// 2. the `model_version` of the L1 entries (`rankings:user:{id}`) of a sample of those users:
///    the live worker and batch write the version of the bundle they ranked with.
/// Replay and batch refuse to run when any evidence names another version than the bundle's,
/// unless `--allow-model-mismatch` is given. No evidence at all (a new deployment) passes.
public struct ModelVersionCheck: Sendable {
    /// The header on `user-state` records that names the bundle's model_version.
    public static let header = "model_version"

    /// Versions seen in the latest state records' headers, with counts.
    public var stateHeaders: [String: Int] = [:]
    /// Latest state records without the header.
    public var statesWithoutHeader = 0
    /// Versions seen in sampled L1 entries, with counts.
    public var l1: [String: Int] = [:]
    public var l1Sampled = 0

    public init() {}

    public init(snapshot: StateSnapshot) {
        for (version, n) in snapshot.modelVersions {
            if version.isEmpty { statesWithoutHeader += n } else { stateHeaders[version, default: 0] += n }
        }
    }

    /// Adds the versions of the L1 entries of up to `sample` of `users` (one MGET).
    public mutating func sampleL1(redis: RedisClient, keyPrefix: String, users: [Int64], sample: Int = 200) async {
        guard !users.isEmpty else { return }
        let step = max(1, users.count / sample)
        let picked = stride(from: 0, to: users.count, by: step).prefix(sample).map { users[$0] }
        guard let replies = try? await redis.pipeline([.mget(picked.map { keyPrefix + CacheKeys.ranking($0) })]),
              let values = try? replies[0].array() else { return }
        l1Sampled = picked.count
        for v in values {
            guard let bytes = try? v.bytes(), let version = Self.l1ModelVersion(bytes) else { continue }
            l1[version, default: 0] += 1
        }
    }

    /// The top-level model_version of a response JSON, without parsing the items.
    static func l1ModelVersion(_ bytes: [UInt8]) -> String? {
        let needle = Array("\"model_version\":\"".utf8)
        guard bytes.count > needle.count else { return nil }
        var i = 0
        while i + needle.count <= bytes.count {
            if bytes[i] == needle[0] && Array(bytes[i..<(i + needle.count)]) == needle {
                let start = i + needle.count
                guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
                return String(decoding: bytes[start..<end], as: UTF8.self)
            }
            i += 1
        }
        return nil
    }

    /// Versions other than `modelVersion` that the evidence names.
    public func mismatches(_ modelVersion: String) -> [String] {
        Set(stateHeaders.keys).union(l1.keys).filter { $0 != modelVersion }.sorted()
    }

    /// One line for logs and summaries.
    public var description: String {
        func list(_ d: [String: Int]) -> String { d.isEmpty ? "none" : d.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ") }
        return "state headers: \(list(stateHeaders)) (\(statesWithoutHeader) without); L1 sample of \(l1Sampled): \(list(l1))"
    }

    /// Throws when the evidence names another model version and that is not allowed.
    public func enforce(bundleVersion: String, allowMismatch: Bool, what: String) throws(ModelMismatchError) {
        let other = mismatches(bundleVersion)
        guard !other.isEmpty, !allowMismatch else { return }
        throw ModelMismatchError("the existing user states belong to model_version \(other.joined(separator: ", ")) but the bundle is \(bundleVersion) (\(description)); \(what) would mix models: pass --allow-model-mismatch to run anyway")
    }
}

/// Replay or batch refused to run: the states belong to another model (a configuration
/// problem — the wrong bundle, or a missing `--allow-model-mismatch` — so the CLI exits 2).
public struct ModelMismatchError: Error, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
