import DequeModule
import KafkaClient
import Synchronization

/// Work for a lane, in arrival order.
enum LaneWork: Sendable {
    /// An input record and when the worker received it (for latency_ms).
    case record(KafkaRecord, receivedAt: ContinuousClock.Instant)
    /// Time passed: publish due event-driven re-ranks.
    case tick
    /// Publish now the pending re-ranks of these input partitions, then call `done`.
    case flushPartitions(Set<Int32>, done: @Sendable () -> Void)
}

/// An unbounded multi-producer, single-consumer queue that hands out batches (the dispatcher
/// bounds it through the in-flight limit).
final class LaneInbox: Sendable {
    private struct State {
        var items = Deque<LaneWork>()
        var waiter: CheckedContinuation<[LaneWork]?, Never>?
        var closed = false
    }
    private let state = Mutex(State())

    func push(_ work: LaneWork) {
        let waiter = state.withLock { s -> CheckedContinuation<[LaneWork]?, Never>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.items.append(work)
            return nil
        }
        waiter?.resume(returning: [work])
    }

    /// Up to `max` queued items; waits when empty; nil once closed and drained.
    func nextBatch(max: Int) async -> [LaneWork]? {
        await withCheckedContinuation { cont in
            let ready: [LaneWork]?? = state.withLock { s in
                if !s.items.isEmpty {
                    // Moved out one by one: copying a prefix and then removing it retained and
                    // released every record's buffers once more (a few per cent of a flood).
                    let n = Swift.min(max, s.items.count)
                    var batch: [LaneWork] = []
                    batch.reserveCapacity(n)
                    for _ in 0..<n { batch.append(s.items.removeFirst()) }
                    return .some(batch)
                }
                if s.closed { return .some(nil) }
                s.waiter = cont
                return .none
            }
            if let ready { cont.resume(returning: ready) }
        }
    }

    func close() {
        let waiter = state.withLock { s -> CheckedContinuation<[LaneWork]?, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.items.isEmpty ? s.waiter : nil
        }
        waiter?.resume(returning: nil)
    }

    var count: Int { state.withLock { $0.items.count } }
}
