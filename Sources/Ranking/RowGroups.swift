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

    func range(_ g: Int) -> Range<Int> { (g == 0 ? 0 : ends[g - 1])..<ends[g] }

    subscript(_ g: Int) -> ArraySlice<Int32> { rows[range(g)] }
}
