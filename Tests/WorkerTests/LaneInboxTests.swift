import Synchronization
import Testing
import TestSupport
@testable import Worker

/// Counts live instances, to see that the queue neither leaks nor frees twice.
private final class Tracked {
    static let live = Atomic<Int>(0)
    let value: Int
    init(_ value: Int) { self.value = value; Self.live.add(1, ordering: .relaxed) }
    deinit { Self.live.subtract(1, ordering: .relaxed) }
}

@Suite("Lane inbox queue")
struct LaneInboxTests {
    @Test("the move queue is FIFO through wrap-arounds and growth, and releases what it still holds")
    func moveQueueFIFO() {
        var rng = SeededRandom(seed: 5)
        do {
            var q = MoveQueue<Tracked>()
            var next = 0, expected = 0
            for _ in 0..<5_000 {
                if rng.next() % 3 != 0 {
                    q.push(Tracked(next))
                    next += 1
                } else if !q.isEmpty {
                    #expect(q.pop().value == expected)
                    expected += 1
                }
                #expect(q.count == next - expected)
            }
            #expect(Tracked.live.load(ordering: .relaxed) == q.count)
        }
        #expect(Tracked.live.load(ordering: .relaxed) == 0, "the queue's deinit releases its elements")
    }

    @Test("batches hold the items in reverse arrival order with their request flags, at most max at a time, and nil once closed and drained")
    func batches() async {
        let inbox = LaneInbox()
        for i in 0..<300 { inbox.push(.flushPartitions([Int32(i)], done: {}), request: i % 7 == 0) }
        var seen: [Int32] = [], flagged: [Int32] = [], positioned: [Int32] = []
        while seen.count < 300, var batch = await inbox.nextBatch(max: 128) {
            #expect(batch.items.count <= 128)
            for i in batch.requests { if case .flushPartitions(let p, _) = batch.items[i] { positioned.append(contentsOf: p) } }
            while let (work, request) = batch.next() {
                guard case .flushPartitions(let p, _) = work else { continue }
                seen.append(contentsOf: p)
                if request { flagged.append(contentsOf: p) }
            }
        }
        #expect(positioned.sorted() == flagged, "request positions point at the flagged items")
        #expect(seen == (0..<300).map { Int32($0) })
        #expect(flagged == stride(from: 0, to: 300, by: 7).map { Int32($0) }, "the request flags travel with their items")
        inbox.push(.tick)
        inbox.close()
        #expect(await inbox.nextBatch(max: 10)?.items.count == 1)
        #expect(await inbox.nextBatch(max: 10) == nil)
    }
}
