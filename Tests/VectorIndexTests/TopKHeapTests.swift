import Testing
@testable import VectorIndex

@Suite("top-k selection")
struct TopKHeapTests {
    /// The kept scores are the k largest of the stream, and the results come best first with
    /// ties by ascending id, in both the sorted-array mode (k <= 32) and the heap mode, reused
    /// across capacities.
    @Test("keeps the k best of a stream with many ties, in both modes, across resets")
    func keepsTheBest() {
        var rng = SplitMix64(seed: 11)
        var heap = TopKHeap(capacity: 1)
        defer { heap.deallocate() }
        for k in [1, 2, 5, 16, 31, 32, 33, 64, 200, 16, 3] {
            for n in [0, 1, k - 1, k, k + 1, 10 * k + 7] where n >= 0 {
                heap.reset(capacity: k)
                var seen: [(Float, Int64)] = []
                for i in 0..<n {
                    // Few distinct values: ties at the threshold are the common case (fast-scan sums).
                    let s = Float(rng.next() % 23) - 11
                    seen.append((s, Int64(i)))
                    heap.push(s, Int64(i))
                }
                #expect(heap.count == min(k, n))
                let want = seen.map(\.0).sorted(by: >).prefix(k)
                var out = [Neighbor](repeating: Neighbor(id: -1, score: 0), count: max(1, k))
                let got = out.withUnsafeMutableBufferPointer { heap.sortedResults(into: $0.baseAddress!) }
                #expect(got == min(k, n))
                #expect(out.prefix(got).map(\.score) == Array(want), "k \(k) n \(n)")
                for i in 1..<max(1, got) {
                    #expect(Neighbor.precedes(out[i - 1], out[i]), "k \(k) n \(n): results not best first at \(i)")
                }
                if got == k, let worst = want.last { #expect(heap.threshold == worst) }
            }
        }
    }
}
