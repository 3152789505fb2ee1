import Foundation
import Synchronization

/// A dedicated OS thread that runs a polling step until asked to stop. librdkafka's
/// blocking polls run here, never on Swift's cooperative pool, and everything librdkafka
/// hands back (events) is turned into Swift values on this thread, not on librdkafka's own.
final class PollThread: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let threadID = Mutex<pthread_t?>(nil)

    /// `step` is called repeatedly; it should block at most a few milliseconds.
    /// `drain` runs once after a stop request, on the same thread.
    init(name: String, step: @escaping @Sendable () -> Void, drain: @escaping @Sendable () -> Void = {}) {
        let thread = Thread { [self] in
            threadID.withLock { $0 = pthread_self() }
            while !stopFlag.load(ordering: .acquiring) { step() }
            drain()
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    var isCurrent: Bool {
        threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Asks the loop to stop and waits until `drain` has finished (unless called from the thread).
    func stop() {
        if stopFlag.exchange(true, ordering: .acquiringAndReleasing) { return }
        if !isCurrent { finished.wait() }
    }
}
