import Testing
import TestSupport
@testable import Ranking

@Suite("Rule 3's id set")
struct ItemIdSetTests {
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
            let set = ItemIdSet(reference)
            #expect(set.count == reference.count, "run \(run)")
            #expect(set.isEmpty == reference.isEmpty, "run \(run)")
            for id in reference {
                for probe in [id, id &+ 1, id &- 1, id &+ 1024] {
                    #expect(set.contains(probe) == reference.contains(probe), "run \(run), id \(probe)")
                }
            }
            #expect(!ItemIdSet.empty.contains(0))
        }
    }
}
