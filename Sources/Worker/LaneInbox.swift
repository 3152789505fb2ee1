import KafkaClient
import Synchronization

/// Work for a lane, in arrival order.
enum LaneWork: Sendable {
    /// An input record and when the worker received it (for latency_ms). Whether it is a ranking
    /// request (else activity) travels beside it (`push(_:request:)`, `LaneBatch.requests`).
    case record(KafkaRecord, receivedAt: ContinuousClock.Instant)
    /// Time passed: publish due event-driven re-ranks.
    case tick
    /// Publish now the pending re-ranks of these input partitions, then call `done`.
    case flushPartitions(Set<Int32>, done: @Sendable () -> Void)
}

/// Items handed to a lane at once, and which of them are ranking requests (their positions in
/// `items`, ascending: matching on the items to find out would copy each record). `items`
/// holds them in reverse arrival order, so `popLast` takes them in order without a copy (a
/// reversal would copy).
struct LaneBatch {
    var items: [LaneWork] = []
    var requests: [Int] = []

    /// Takes the next item in arrival order, with whether it is a ranking request.
    mutating func next() -> (work: LaneWork, request: Bool)? {
        guard let work = items.popLast() else { return nil }
        // `requests` ascends, so the next request in arrival order is its last entry.
        let request = requests.last == items.count
        if request { requests.removeLast() }
        return (work, request)
    }
}

/// An unbounded multi-producer, single-consumer queue that hands out batches (the dispatcher
/// bounds it through the in-flight limit). Items are moved in and out, never copied: a copy of a
/// record retains each of its buffers (Deque's append copies its argument).
final class LaneInbox: Sendable {
    private struct State: ~Copyable {
        // Two queues in step (a tuple element was copied when taken apart).
        var items = MoveQueue<LaneWork>()
        var requestFlags = MoveQueue<Bool>()
        var waiter: CheckedContinuation<LaneBatch?, Never>?
        var closed = false
    }
    private let state = Mutex(State())

    /// `request`: the work is a ranking request record.
    func push(_ work: consuming LaneWork, request: Bool = false) {
        var item: LaneWork? = consume work
        let waiter = state.withLock { s -> CheckedContinuation<LaneBatch?, Never>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.items.push(item.take()!)
            s.requestFlags.push(request)
            return nil
        }
        if let waiter {
            var one = LaneBatch()
            one.items.append(item.take()!)
            if request { one.requests.append(0) }
            waiter.resume(returning: one)
        }
    }

    /// Up to `max` queued items in arrival order; waits when empty; nil once closed and drained.
    func nextBatch(max: Int) async -> LaneBatch? {
        await withCheckedContinuation { cont in
            let ready: LaneBatch?? = state.withLock { s in
                if !s.items.isEmpty {
                    let n = Swift.min(max, s.items.count)
                    var requests: [Int] = []
                    let items = Array(unsafeUninitializedCapacity: n) { buf, initialized in
                        for i in 0..<n {
                            if s.requestFlags.pop() { requests.append(n - 1 - i) }
                            (buf.baseAddress! + (n - 1 - i)).initialize(to: s.items.pop())
                        }
                        initialized = n
                    }
                    return .some(LaneBatch(items: items, requests: requests.reversed()))
                }
                if s.closed { return .some(nil) }
                s.waiter = cont
                return .none
            }
            if let ready { cont.resume(returning: ready) }
        }
    }

    func close() {
        let waiter = state.withLock { s -> CheckedContinuation<LaneBatch?, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.items.isEmpty ? s.waiter : nil
        }
        waiter?.resume(returning: nil)
    }

    var count: Int { state.withLock { $0.items.count } }
}

/// A FIFO ring buffer whose elements are moved in (`push`) and out (`pop`) of raw storage.
struct MoveQueue<Element>: ~Copyable {
    private var storage: UnsafeMutablePointer<Element>
    private var capacity: Int
    private var head = 0
    private(set) var count = 0

    init() {
        capacity = 64
        storage = .allocate(capacity: capacity)
    }

    deinit {
        for i in 0..<count { (storage + (head + i) % capacity).deinitialize(count: 1) }
        storage.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    mutating func push(_ element: consuming Element) {
        if count == capacity { grow() }
        (storage + (head + count) % capacity).initialize(to: element)
        count += 1
    }

    /// The oldest element; the queue must not be empty.
    mutating func pop() -> Element {
        precondition(count > 0, "MoveQueue.pop on an empty queue")
        let e = (storage + head).move()
        head = (head + 1) % capacity
        count -= 1
        return e
    }

    private mutating func grow() {
        let bigger = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
        let first = min(count, capacity - head)
        bigger.moveInitialize(from: storage + head, count: first)
        (bigger + first).moveInitialize(from: storage, count: count - first)
        storage.deallocate()
        storage = bigger
        capacity *= 2
        head = 0
    }
}
