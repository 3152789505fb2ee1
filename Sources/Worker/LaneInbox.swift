import DequeModule
import KafkaClient
import Synchronization

/// Work for a lane, in arrival order.
enum LaneWork: Sendable {
    /// An input record, when the worker received it (for latency_ms), and whether it is a ranking
    /// request (else activity): a pattern on the flag alone does not copy the record.
    case record(KafkaRecord, receivedAt: ContinuousClock.Instant, request: Bool)
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
        var waiter: CheckedContinuation<Deque<LaneWork>?, Never>?
        var closed = false
    }
    private let state = Mutex(State())

    /// Takes `work` (moved into the queue, not copied: a copy retains every buffer of a record).
    func push(_ work: consuming LaneWork) {
        var item: LaneWork? = consume work
        let waiter = state.withLock { s -> CheckedContinuation<Deque<LaneWork>?, Never>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.items.append(item.take()!)
            return nil
        }
        if let waiter { waiter.resume(returning: Deque([item.take()!])) }
    }

    /// Up to `max` queued items, to be taken with `popFirst`; waits when empty; nil once closed
    /// and drained.
    func nextBatch(max: Int) async -> Deque<LaneWork>? {
        await withCheckedContinuation { cont in
            let ready: Deque<LaneWork>?? = state.withLock { s in
                if !s.items.isEmpty {
                    // Moved out one by one: copying a prefix and then removing it retained and
                    // released every record's buffers once more (a few per cent of a flood).
                    if s.items.count <= max { return .some(s.items.take()) }
                    var batch = Deque<LaneWork>(minimumCapacity: max)
                    for _ in 0..<max { batch.append(s.items.removeFirst()) }
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
        let waiter = state.withLock { s -> CheckedContinuation<Deque<LaneWork>?, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.items.isEmpty ? s.waiter : nil
        }
        waiter?.resume(returning: nil)
    }

    var count: Int { state.withLock { $0.items.count } }
}

extension Deque {
    /// The contents, leaving the deque empty (no element copied).
    mutating func take() -> Deque {
        var out = Deque()
        swap(&out, &self)
        return out
    }
}
