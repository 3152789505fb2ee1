import Dispatch
import Synchronization

/// An `Atomic<Int64>` that closures can share (an `Atomic` itself cannot be captured).
final class SharedCounter: Sendable {
    private let value: Atomic<Int64>

    init(_ initial: Int64 = 0) { value = Atomic(initial) }

    var current: Int64 { value.load(ordering: .relaxed) }

    func store(_ v: Int64) { value.store(v, ordering: .relaxed) }

    /// Adds `n` and returns the value before.
    @discardableResult
    func add(_ n: Int64 = 1) -> Int64 { value.add(n, ordering: .relaxed).oldValue }
}

/// Outputs handed to Kafka whose acknowledgement a phase waits for.
final class PendingOutputs: Sendable {
    private let pending = SharedCounter()

    func begin(_ n: Int = 1) { pending.add(Int64(n)) }
    func done() { pending.add(-1) }
    var count: Int { Int(pending.current) }

    /// Waits until every begun output is done (polling; `tick` runs meanwhile, e.g. to flush).
    func wait(timeout: Duration, tick: () -> Void = {}) async throws {
        let deadline = ContinuousClock.now + timeout
        while count > 0 {
            if ContinuousClock.now > deadline {
                throw WorkerError("\(count) outputs still unacknowledged after \(timeout)")
            }
            tick()
            try await Task.sleep(nanoseconds: 2_000_000)
        }
    }
}

/// Runs blocking work (hiredis round trips, BLAS batches, Kafka metadata) on a dispatch
/// queue, off Swift's cooperative thread pool.
func runOffPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { cont in
        DispatchQueue.global().async { cont.resume(with: Result { try body() }) }
    }
}

/// A `Mutex` that closures can share (a `Mutex` itself cannot be captured).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<R: Sendable>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { try body(&$0) }
    }
}
