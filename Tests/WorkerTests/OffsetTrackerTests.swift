import TestSupport
import Testing
import Worker

@Suite("Commit positions of one partition")
struct OffsetTrackerTests {
    @Test("on 300 random runs (offset gaps, several outputs per record, acknowledgements out of order, added outputs, abandoned records) the position is always just past the done prefix and the active count is the records still waiting")
    func positionIsTheFirstOffsetNotDone() {
        var rng = SeededRandom(seed: 21)
        for run in 0..<300 {
            var tracker = OffsetTracker()
            // The reference: outstanding outputs per offset, in order; abandoned ones never finish.
            var offsets: [Int64] = [], outstanding: [Int64: Int] = [:], abandoned = Set<Int64>()
            var acks: [Int64] = []          // one entry per output still to acknowledge
            var next = Int64(rng.next() % 1000)
            for _ in 0..<(1 + Int(rng.next() % 400)) {
                switch rng.next() % 10 {
                case 0..<5:  // a new record, maybe after a gap (compacted or transactional offsets)
                    next += 1 + Int64(rng.next() % 3)
                    let n = Int(rng.next() % 4)
                    tracker.begin(next, outputs: n)
                    offsets.append(next); outstanding[next] = n
                    acks += Array(repeating: next, count: n)
                case 5..<8 where !acks.isEmpty:  // any output acknowledged, in any order
                    let o = acks.remove(at: Int(rng.next() % UInt64(acks.count)))
                    tracker.complete(o)
                    if !abandoned.contains(o) { outstanding[o]! -= 1 }
                case 8 where !acks.isEmpty:  // a record still in flight gets another output
                    let o = acks[Int(rng.next() % UInt64(acks.count))]
                    guard tracker.isInFlight(o), !abandoned.contains(o) else { continue }
                    tracker.addOutputs(o, 1)
                    outstanding[o]! += 1; acks.append(o)
                case 9 where !offsets.isEmpty:  // a record never run here (partition revoked)
                    let o = offsets[Int(rng.next() % UInt64(offsets.count))]
                    guard tracker.isInFlight(o), outstanding[o]! > 0, !abandoned.contains(o) else { continue }
                    tracker.abandon(o)
                    abandoned.insert(o)
                default:
                    continue
                }
                // The position is the last offset of the done prefix + 1 (nil while the first
                // record is not done): with a gap after it, the next fetch starts at the next record.
                let notDone = offsets.firstIndex { abandoned.contains($0) || outstanding[$0]! > 0 } ?? offsets.count
                let expected: Int64? = notDone == 0 ? nil : offsets[notDone - 1] + 1
                #expect(tracker.position == expected, "run \(run)")
                #expect(tracker.uncommitted == offsets.count - notDone, "run \(run)")
                // Active: records still waiting for an output, wherever they are.
                let waiting = offsets.filter { !abandoned.contains($0) && outstanding[$0]! > 0 }.count
                #expect(tracker.active == waiting, "run \(run)")
            }
        }
    }

    @Test("abandoning a record twice (state writes and a re-rank both give up on it) counts it once")
    func abandonIsIdempotent() {
        var tracker = OffsetTracker()
        tracker.begin(10, outputs: 2)
        tracker.begin(11, outputs: 1)
        tracker.abandon(10)
        tracker.abandon(10)
        #expect(tracker.active == 1)
        tracker.complete(11)
        #expect(tracker.active == 0)
        #expect(tracker.position == nil)
    }
}
