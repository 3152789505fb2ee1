/// Rule 3's recently shown items, looked up in the hot loops of a ranking (every candidate the
/// fresh and promoted sources accept, every exactly scored candidate). Open addressing with a
/// multiplicative hash, built once per ranking: `Set<Int64>` hashes each lookup with SipHash.
struct ItemIdSet: Sendable {
    private var keys: [Int64] = []
    private var used: [Bool] = []
    private var shift: UInt64 = 0
    private(set) var count = 0

    static let empty = ItemIdSet()

    private init() {}

    init<S: Sequence>(_ ids: S) where S.Element == Int64 {
        for id in ids { insert(id) }
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ id: Int64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always)
    func contains(_ id: Int64) -> Bool {
        guard count > 0 else { return false }
        let mask = keys.count - 1
        var i = home(id)
        while used[i] {
            if keys[i] == id { return true }
            i = (i + 1) & mask
        }
        return false
    }

    mutating func insert(_ id: Int64) {
        if keys.isEmpty || 2 * (count + 1) > keys.count { grow() }
        let mask = keys.count - 1
        var i = home(id)
        while used[i] {
            if keys[i] == id { return }
            i = (i + 1) & mask
        }
        keys[i] = id
        used[i] = true
        count += 1
    }

    /// Doubles the table (at most half full), re-inserting what it holds.
    private mutating func grow() {
        let old = zip(keys, used).filter(\.1).map(\.0)
        let size = max(16, keys.count * 2)
        keys = [Int64](repeating: 0, count: size)
        used = [Bool](repeating: false, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        count = 0
        for id in old { insert(id) }
    }
}
