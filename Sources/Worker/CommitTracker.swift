import KafkaClient
import Synchronization

/// Per input partition, which offsets are safe to commit (see `OffsetTracker`), shared by the
/// lanes (begin), the output callbacks (complete) and the committer.
final class CommitTracker: Sendable {
    private struct State {
        var trackers: [TopicPartition: OffsetTracker] = [:]
        var committed: [TopicPartition: Int64] = [:]
        var inFlight = 0

        /// Runs `body` on the tracker at `i`, keeping `inFlight` in step.
        mutating func mutate(at i: Dictionary<TopicPartition, OffsetTracker>.Index, _ body: (inout OffsetTracker) -> Void) {
            let before = trackers.values[i].active
            body(&trackers.values[i])
            inFlight += trackers.values[i].active - before
        }
    }
    private let state = Mutex(State())

    func begin(_ tp: TopicPartition, _ offset: Int64, outputs: Int) {
        update(tp, creating: true) { $0.begin(offset, outputs: outputs) }
    }

    func addOutputs(_ tp: TopicPartition, _ offset: Int64, _ n: Int) {
        guard n > 0 else { return }
        update(tp) { $0.addOutputs(offset, n) }
    }

    func complete(_ tp: TopicPartition, _ offset: Int64) {
        update(tp) { $0.complete(offset) }
    }

    func abandon(_ tp: TopicPartition, _ offset: Int64) {
        update(tp) { $0.abandon(offset) }
    }

    /// `complete` for several records under one lock (a user's coalesced state write or re-rank
    /// finishes a dozen records at once, usually of one partition).
    func complete(_ records: [(TopicPartition, Int64)]) {
        guard !records.isEmpty else { return }
        state.withLock { s in
            var tp = records[0].0
            var i = s.trackers.index(forKey: tp)
            for (t, offset) in records {
                if t != tp { tp = t; i = s.trackers.index(forKey: t) }
                guard let i else { continue }
                s.mutate(at: i) { $0.complete(offset) }
            }
        }
    }

    /// Runs `body` on the partition's tracker (made first when `creating`, else skipped when
    /// absent) and keeps `inFlight` in step. One hash lookup in the common case: this runs
    /// several times per record.
    private func update(_ tp: TopicPartition, creating: Bool = false, _ body: (inout OffsetTracker) -> Void) {
        state.withLock { s in
            var found = s.trackers.index(forKey: tp)
            if found == nil && creating {
                s.trackers[tp] = OffsetTracker()    // once per partition
                found = s.trackers.index(forKey: tp)
            }
            guard let i = found else { return }
            s.mutate(at: i, body)
        }
    }

    /// Records whose outputs are not all acknowledged, over all partitions (what backpressure
    /// bounds). Done records behind one still waiting (e.g. for its coalesced re-rank) are
    /// not counted: they hold nothing but their place in `uncommitted`.
    var inFlight: Int { state.withLock { $0.inFlight } }

    /// `inFlight` and the records not yet committable over all partitions (in flight, or done
    /// behind a record in flight), read under one lock (the dispatcher checks both per record).
    var load: (inFlight: Int, uncommitted: Int) {
        state.withLock { s in (s.inFlight, s.trackers.values.reduce(0) { $0 + $1.uncommitted }) }
    }

    /// Records of these partitions whose outputs are still unacknowledged.
    func active(_ tps: Set<TopicPartition>) -> Int {
        state.withLock { s in tps.reduce(0) { $0 + (s.trackers[$1]?.active ?? 0) } }
    }

    /// Commit positions that moved since the last `markCommitted`.
    func pendingCommits(_ only: Set<TopicPartition>? = nil) -> [TopicPartition: Int64] {
        state.withLock { s in
            var out: [TopicPartition: Int64] = [:]
            for (tp, t) in s.trackers where only?.contains(tp) ?? true {
                if let p = t.position, p > (s.committed[tp] ?? -1) { out[tp] = p }
            }
            return out
        }
    }

    func markCommitted(_ offsets: [TopicPartition: Int64]) {
        state.withLock { s in for (tp, o) in offsets { s.committed[tp] = max(o, s.committed[tp] ?? -1) } }
    }

    /// Forgets partitions (after revocation: a later owner starts from the committed offsets).
    func remove(_ tps: Set<TopicPartition>) {
        state.withLock { s in
            for tp in tps {
                s.inFlight -= s.trackers[tp]?.active ?? 0
                s.trackers[tp] = nil
                s.committed[tp] = nil
            }
        }
    }
}
