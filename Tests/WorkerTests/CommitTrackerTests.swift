import KafkaClient
import Testing
import TestSupport
@testable import Worker

@Suite("Commit tracker over partitions")
struct CommitTrackerTests {
    @Test("completing a user's records in one call leaves the same commit positions and in-flight count as completing them one by one (200 random runs, two partitions, interleaved)")
    func batchCompleteEqualsSingleCompletes() {
        var rng = SeededRandom(seed: 7)
        let tps = [TopicPartition("user-activity", 0), TopicPartition("user-activity", 1)]
        for run in 0..<200 {
            let single = CommitTracker(), batched = CommitTracker()
            var next: [Int64] = [0, 0]
            var waiting: [(TopicPartition, Int64)] = []
            for _ in 0..<(1 + Int(rng.next() % 200)) {
                if rng.next() % 3 != 0 || waiting.isEmpty {
                    let p = Int(rng.next() % 2)
                    next[p] += 1 + Int64(rng.next() % 2)
                    for t in [single, batched] { t.begin(tps[p], next[p], outputs: 1) }
                    waiting.append((tps[p], next[p]))
                } else {
                    // A group of waiting records (any partitions, any order) finishes together.
                    var group: [(TopicPartition, Int64)] = []
                    for _ in 0..<(1 + Int(rng.next() % 12)) where !waiting.isEmpty {
                        group.append(waiting.remove(at: Int(rng.next() % UInt64(waiting.count))))
                    }
                    for (tp, o) in group { single.complete(tp, o) }
                    batched.complete(group)
                }
                #expect(single.inFlight == batched.inFlight, "run \(run)")
                #expect(single.pendingCommits() == batched.pendingCommits(), "run \(run)")
            }
            #expect(batched.inFlight == waiting.count, "run \(run)")
        }
    }
}
