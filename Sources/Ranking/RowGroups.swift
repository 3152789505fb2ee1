/// Groups of rows (one per category) in one flat buffer that a ranker reuses across rankings:
/// a ranking's per-category candidate lists were ~150 small arrays, each a heap allocation,
/// a free and their reference counting (~10 % of a ranking at 100,000 items).
struct RowGroups {
    private(set) var rows: [Int32] = []
    /// ends[g]: one past group g's last row in `rows`.
    private var ends: [Int] = []

    var count: Int { ends.count }

    /// Empties the groups, keeping the storage.
    mutating func reset() {
        rows.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }

    /// Appends a row to the group being built (the one `close` ends next).
    @inline(__always)
    mutating func append(_ r: Int32) { rows.append(r) }

    /// Ends the group being built (possibly empty); the next appends start group `count`.
    mutating func close() { ends.append(rows.count) }

    /// Whether the group being built holds `r`.
    func openGroupContains(_ r: Int32) -> Bool {
        let start = ends.last ?? 0
        var i = start
        while i < rows.count { if rows[i] == r { return true }; i += 1 }
        return false
    }

    /// Sorts group `g`'s rows by descending `key` (stable: equal keys keep their order).
    mutating func sortGroup(_ g: Int, by key: (Int32) -> Float) {
        let r = range(g)
        guard r.count > 1 else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: r.count) { keys in
            rows.withUnsafeMutableBufferPointer { p in
                for i in r { keys[i - r.lowerBound] = key(p[i]) }
                for i in 1..<r.count {
                    let k = keys[i], v = p[r.lowerBound + i]
                    var j = i
                    while j > 0 && keys[j - 1] < k {
                        keys[j] = keys[j - 1]
                        p[r.lowerBound + j] = p[r.lowerBound + j - 1]
                        j -= 1
                    }
                    keys[j] = k
                    p[r.lowerBound + j] = v
                }
            }
        }
    }

    func range(_ g: Int) -> Range<Int> { (g == 0 ? 0 : ends[g - 1])..<ends[g] }

    subscript(_ g: Int) -> ArraySlice<Int32> { rows[range(g)] }
}
