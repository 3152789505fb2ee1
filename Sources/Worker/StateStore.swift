import RankingModel
import Synchronization

/// A user's live record in the worker: the state of record plus what requests taught us.
struct UserRecord: Sendable {
    var state: UserState?
    /// The device of the user's last ranking request (used by event-driven re-ranks).
    var lastDevice: String?
}

/// The states of the users of the partitions this member owns, by input partition number.
/// Lanes read and write their partitions' users; HTTP reads any. One lock, short holds.
final class StateStore: Sendable {
    private let partitions = Mutex<[Int32: [Int64: UserRecord]]>([:])

    func install(_ partition: Int32, _ users: [Int64: UserRecord]) {
        partitions.withLock { $0[partition] = users }
    }

    func remove(_ partition: Int32) {
        partitions.withLock { _ = $0.removeValue(forKey: partition) }
    }

    func owns(_ partition: Int32) -> Bool { partitions.withLock { $0[partition] != nil } }

    var ownedPartitions: [Int32] { partitions.withLock { Array($0.keys).sorted() } }

    var userCount: Int { partitions.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    func record(_ partition: Int32, _ user: Int64) -> UserRecord? {
        partitions.withLock { $0[partition]?[user] }
    }

    /// Finds a user in whichever owned partition holds it.
    func find(_ user: Int64) -> UserRecord? {
        partitions.withLock { p in
            for (_, users) in p { if let r = users[user] { return r } }
            return nil
        }
    }

    /// Runs `body` on the user's record (created empty when absent) of an owned partition;
    /// nil when the partition is not owned (any more).
    func update<R>(_ partition: Int32, _ user: Int64, _ body: (inout UserRecord) -> R) -> R? {
        partitions.withLock { p in
            guard p[partition] != nil else { return nil }
            var rec = p[partition]![user] ?? UserRecord()
            p[partition]![user] = nil  // keep the arrays uniquely referenced while mutating
            let r = body(&rec)
            p[partition]![user] = rec
            return r
        }
    }
}
