/// A small seeded generator (SplitMix64): the index's only source of randomness, so training
/// with the same seed and data gives the same index bit for bit.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<bound without modulo bias worth caring about for sampling.
    mutating func index(below bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// `count` distinct indices from 0..<n (all of them, shuffled, when count >= n).
    mutating func sample(_ count: Int, from n: Int) -> [Int] {
        if count >= n {
            var all = Array(0..<n)
            for i in stride(from: n - 1, to: 0, by: -1) { all.swapAt(i, index(below: i + 1)) }
            return all
        }
        // Floyd's algorithm keeps memory at O(count) even for huge n.
        var chosen = Set<Int>(minimumCapacity: count)
        var out = [Int]()
        out.reserveCapacity(count)
        for j in (n - count)..<n {
            let t = index(below: j + 1)
            if chosen.insert(t).inserted { out.append(t) } else { chosen.insert(j); out.append(j) }
        }
        return out.sorted()
    }
}
