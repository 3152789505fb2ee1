import Foundation
import RedisClient
import Synchronization

/// Where a batch run got to. Users are ranked in ascending user id order; `lastUserId` is the
/// highest id such that every active user up to it has its L1 entry acknowledged (and its
/// response delivered with `--publish`). A rerun resumes after it, at the same T.
public struct BatchCheckpoint: Codable, Sendable, Equatable {
    public var version = 1
    public var runId: String
    /// Wall time the run started (ms).
    public var startedAt: Int64
    /// T of the run's rankings (ms), kept by a resumed run.
    public var at: Int64
    public var modelVersion: String
    public var activeDays: Double
    public var totalUsers: Int
    public var doneUsers: Int
    public var lastUserId: Int64?
    public var completed: Bool
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case version, runId = "run_id", startedAt = "started_at", at, modelVersion = "model_version"
        case activeDays = "active_days", totalUsers = "total_users", doneUsers = "done_users"
        case lastUserId = "last_user_id", completed, updatedAt = "updated_at"
    }

    public init(runId: String, startedAt: Int64, at: Int64, modelVersion: String, activeDays: Double, totalUsers: Int) {
        self.runId = runId
        self.startedAt = startedAt
        self.at = at
        self.modelVersion = modelVersion
        self.activeDays = activeDays
        self.totalUsers = totalUsers
        self.doneUsers = 0
        self.lastUserId = nil
        self.completed = false
        self.updatedAt = startedAt
    }

    /// Whether a new run should continue this one rather than start over: same model and
    /// window, unfinished, started less than `maxAge` ago (after that its rankings' T is stale).
    public func resumable(modelVersion: String, activeDays: Double, now: Int64, maxAgeMs: Int64 = 24 * 3_600_000) -> Bool {
        !completed && self.modelVersion == modelVersion && self.activeDays == activeDays && now - startedAt < maxAgeMs
    }

    public func jsonBytes() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public static func decode(_ bytes: [UInt8], source: String) throws(WorkerError) -> BatchCheckpoint {
        do { return try JSONDecoder().decode(BatchCheckpoint.self, from: Data(bytes)) } catch {
            throw WorkerError("checkpoint \(source) is unreadable: \(error)")
        }
    }
}

/// Where checkpoints are kept: a file (written atomically: temp file + rename) or a Redis key.
public enum CheckpointStore: Sendable {
    case file(String)
    case redis(RedisClient, key: String)

    /// Redis checkpoints outlive a day's rerun window, not forever.
    static let redisTTL = 7 * 24 * 3600

    public var description: String {
        switch self {
        case .file(let path): return path
        case .redis(_, let key): return "Redis key \(key)"
        }
    }

    public func load() throws -> BatchCheckpoint? {
        switch self {
        case .file(let path):
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else { throw WorkerError("checkpoint \(path): cannot read the file") }
            return try BatchCheckpoint.decode(Array(data), source: path)
        case .redis(let redis, let key):
            let reply: RedisReply
            do { reply = try redis.pipelineSync([.get(key)])[0] } catch { throw WorkerError("checkpoint \(description): \(error)") }
            guard let bytes = try? reply.bytes() else { return nil }
            return try BatchCheckpoint.decode(bytes, source: description)
        }
    }

    public func save(_ checkpoint: BatchCheckpoint) throws {
        let bytes = checkpoint.jsonBytes()
        switch self {
        case .file(let path):
            let tmp = path + ".tmp"
            guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else {
                throw WorkerError("checkpoint \(path): cannot write \(tmp)")
            }
            if rename(tmp, path) != 0 { throw WorkerError("checkpoint \(path): cannot rename \(tmp) (errno \(errno))") }
        case .redis(let redis, let key):
            do { try redis.pipelineSync([.set(key, bytes, expireSeconds: Self.redisTTL)])[0].checked() } catch {
                throw WorkerError("checkpoint \(description): \(error)")
            }
        }
    }
}

/// Batches finish out of order (several threads); the checkpoint may only move over a
/// contiguous run of finished batches.
struct BatchCompletion: Sendable {
    private(set) var nextUnfinished = 0
    private var finished = Set<Int>()

    /// Marks `index` finished; returns the new count of contiguous finished batches when it moved.
    mutating func finish(_ index: Int) -> Int? {
        finished.insert(index)
        let before = nextUnfinished
        while finished.remove(nextUnfinished) != nil { nextUnfinished += 1 }
        return nextUnfinished > before ? nextUnfinished : nil
    }
}
