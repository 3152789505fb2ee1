import Testing
import TestSupport
@testable import Ranking

@Suite("Per-ranking id counts (rule 3's set, the creator cap's counts)")
struct IdCountsTests {
    @Test("membership equals Set<Int64>'s on 300 random sets (0 to 400 ids, negative ids, 0, clustered ids that collide in the table), for members and for ids next to them")
    func membershipEqualsSet() {
        var rng = SeededRandom(seed: 11)
        for run in 0..<300 {
            var reference = Set<Int64>()
            let n = Int(rng.next() % 401)
            let clustered = run % 3 == 0
            for _ in 0..<n {
                let id = clustered ? Int64(rng.next() % 64) * 1024 : Int64(bitPattern: rng.next()) >> Int64(rng.next() % 60)
                reference.insert(id)
            }
            if run % 5 == 0 { reference.insert(0) }
            let set = IdCounts(reference)
            #expect(set.count == reference.count, "run \(run)")
            #expect(set.isEmpty == reference.isEmpty, "run \(run)")
            for id in reference {
                for probe in [id, id &+ 1, id &- 1, id &+ 1024] {
                    #expect(set.contains(probe) == reference.contains(probe), "run \(run), id \(probe)")
                }
            }
            #expect(!IdCounts.empty.contains(0))
        }
    }

    @Test("counts equal a Dictionary's after 300 random runs of increments (sized for fewer ids than arrive, so the table grows; clustered ids that collide)")
    func countsEqualDictionary() {
        var rng = SeededRandom(seed: 12)
        for run in 0..<300 {
            var reference: [Int64: Int] = [:]
            var counts = IdCounts(expected: Int(rng.next() % 8))
            for _ in 0..<Int(rng.next() % 300) {
                let id = run % 2 == 0 ? Int64(rng.next() % 40) * 4096 : Int64(bitPattern: rng.next()) >> 40
                reference[id, default: 0] += 1
                counts.increment(id)
            }
            #expect(counts.count == reference.count, "run \(run)")
            for (id, n) in reference {
                #expect(counts[id] == n, "run \(run), id \(id)")
                #expect(counts[id &+ 1] == reference[id &+ 1] ?? 0, "run \(run), id \(id &+ 1)")
            }
        }
    }
}
