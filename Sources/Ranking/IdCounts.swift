/// Counts per id (item or creator) for the hot loops of one ranking: open addressing with a
/// multiplicative hash over a power-of-two table kept at most half full; a `Set` or
/// `Dictionary` hashes every lookup with SipHash. Rule 3's recently shown items use it as a set
/// (`insert`, `contains`: every candidate the fresh and promoted sources accept, every exactly
/// scored candidate), the greedy selection's creator cap as counts.
struct IdCounts: Sendable {
    private var keys: [Int64] = []
    /// 0 marks an empty slot.
    private var counts: [Int32] = []
    private var shift: UInt64 = 0
    /// Distinct ids held.
    private(set) var count = 0

    static let empty = IdCounts()

    private init() {}

    /// Room for `expected` distinct ids without growing.
    init(expected: Int) { resize(to: Self.size(for: expected)) }

    /// The set of `ids` (each counted once).
    init<S: Sequence>(_ ids: S) where S.Element == Int64 {
        for id in ids { insert(id) }
    }

    var isEmpty: Bool { count == 0 }

    /// How many times `id` was counted (0 when absent).
    subscript(id: Int64) -> Int { count == 0 ? 0 : Int(counts[slot(id)]) }

    @inline(__always)
    func contains(_ id: Int64) -> Bool { self[id] > 0 }

    mutating func increment(_ id: Int64) {
        if 2 * (count + 1) > keys.count { resize(to: Self.size(for: count + 1)) }
        let i = slot(id)
        if counts[i] == 0 {
            keys[i] = id
            count += 1
        }
        counts[i] += 1
    }

    /// Set use: counts `id` once.
    mutating func insert(_ id: Int64) {
        if !contains(id) { increment(id) }
    }

    /// The slot of `id`, or the empty slot where it would go. The table is never full.
    @inline(__always)
    private func slot(_ id: Int64) -> Int {
        let mask = keys.count - 1
        var i = Int(truncatingIfNeeded: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while counts[i] != 0 && keys[i] != id { i = (i + 1) & mask }
        return i
    }

    /// The smallest power-of-two table (at least 16) at most half full with `n` ids.
    private static func size(for n: Int) -> Int {
        var size = 16
        while size < 2 * n { size <<= 1 }
        return size
    }

    private mutating func resize(to size: Int) {
        let old = zip(keys, counts).filter { $0.1 != 0 }
        keys = [Int64](repeating: 0, count: size)
        counts = [Int32](repeating: 0, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        for (id, n) in old {
            let i = slot(id)
            keys[i] = id
            counts[i] = n
        }
    }
}
