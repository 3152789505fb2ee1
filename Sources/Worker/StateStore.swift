import RankingModel
import Synchronization

/// A user's live record in the worker: the state of record plus what requests taught us.
struct UserRecord: Sendable {
    var state: UserState?
    /// The device of the user's last ranking request (used by event-driven re-ranks).
    var lastDevice: String?
}

/// The states of the users of the partitions this member owns, by input partition number.
/// Each partition's users sit behind their own lock: a partition is processed by one lane, so
/// lanes never wait for each other (one lock for all of them had the lanes contending while
/// they applied events); HTTP reads any. The map of partitions changes only on assignment.
final class StateStore: Sendable {
    private let partitions = Mutex<[Int32: PartitionStates]>([:])

    /// One partition's users. `revoked` is set under the same lock when the partition is
    /// removed, so no update can land after `remove` returns.
    private final class PartitionStates: Sendable {
        struct Users {
            var byId: [Int64: UserRecord]
            var revoked = false
        }
        let users: Mutex<Users>
        init(_ users: [Int64: UserRecord]) { self.users = Mutex(Users(byId: users)) }
    }

    private func states(_ partition: Int32) -> PartitionStates? { partitions.withLock { $0[partition] } }

    func install(_ partition: Int32, _ users: [Int64: UserRecord]) {
        let old = partitions.withLock { p -> PartitionStates? in
            let old = p[partition]
            p[partition] = PartitionStates(users)
            return old
        }
        old?.users.withLock { $0.revoked = true }
    }

    func remove(_ partition: Int32) {
        let old = partitions.withLock { $0.removeValue(forKey: partition) }
        old?.users.withLock { $0.revoked = true }
    }

    func owns(_ partition: Int32) -> Bool { partitions.withLock { $0[partition] != nil } }

    var ownedPartitions: [Int32] { partitions.withLock { Array($0.keys).sorted() } }

    var userCount: Int {
        let all = partitions.withLock { Array($0.values) }
        return all.reduce(0) { n, s in n + s.users.withLock { $0.byId.count } }
    }

    func record(_ partition: Int32, _ user: Int64) -> UserRecord? {
        states(partition)?.users.withLock { $0.revoked ? nil : $0.byId[user] }
    }

    /// Finds a user in whichever owned partition holds it.
    func find(_ user: Int64) -> UserRecord? {
        let all = partitions.withLock { Array($0.values) }
        for s in all {
            if let r = s.users.withLock({ $0.revoked ? nil : $0.byId[user] }) { return r }
        }
        return nil
    }

    /// Runs `body` on the user's record (created empty when absent) of an owned partition;
    /// nil when the partition is not owned (any more).
    func update<R>(_ partition: Int32, _ user: Int64, _ body: (inout UserRecord) -> R) -> R? {
        guard let s = states(partition) else { return nil }
        return s.users.withLock { u -> R? in
            guard !u.revoked else { return nil }
            // Mutated in place (the default subscript yields the stored value): its arrays stay
            // uniquely referenced, so the state is not copied.
            return body(&u.byId[user, default: UserRecord()])
        }
    }
}
