/// A maximal run of equal labels inside one inverted list: entries start..<next run's start
/// (or the list's end) all carry `label`. Lists are kept sorted by label, so a label-filtered
/// search scans just that run. 8 bytes, stored as is in index files.
public struct LabelRun: Sendable, Equatable {
    public var label: UInt16
    var reserved: UInt16 = 0
    public var start: UInt32

    public init(label: UInt16, start: UInt32) {
        self.label = label
        self.start = start
    }
}

/// The inverted lists: per list, entry ids, label runs and packed codes, each contiguous for
/// sequential scans. A list's memory is either a view into a mapped index file or a buffer
/// owned here; changing a list (add/remove) rebuilds it into an owned buffer, so a mapped index
/// stays cheap to open and still accepts updates (copy on write, per list).
///
/// Not thread-safe by itself: `IVFPQIndex` guards it with a readers-writer lock.
final class InvertedLists: @unchecked Sendable {
    struct List {
        var count = 0
        var ids: UnsafePointer<Int64>?
        var runs: UnsafePointer<LabelRun>?
        var runCount = 0
        var codes: UnsafePointer<UInt8>?
        /// Non-nil when this list's memory is owned (freed on rebuild and deinit).
        var owned: UnsafeMutableRawPointer?
    }

    let layout: CodeLayout
    private(set) var lists: [List]
    /// Keeps the mapped file alive while lists point into it.
    private let backing: MappedFile?
    /// label -> ids of the lists holding at least one entry with that label, ascending.
    private(set) var listsByLabel: [[Int32]] = []
    private var listsByLabelValid = true

    init(nlist: Int, layout: CodeLayout) {
        self.layout = layout
        self.lists = [List](repeating: List(), count: nlist)
        self.backing = nil
    }

    /// Lists that point into `backing`'s memory.
    init(layout: CodeLayout, mappedLists: [List], backing: MappedFile) {
        self.layout = layout
        self.lists = mappedLists
        self.backing = backing
        self.listsByLabelValid = false
        rebuildLabelIndex()
    }

    deinit {
        for l in lists { l.owned?.deallocate() }
    }

    var nlist: Int { lists.count }
    var totalCount: Int { lists.reduce(0) { $0 + $1.count } }
    var codeBytes: Int { lists.reduce(0) { $0 + layout.codeBytes(count: $1.count) } }

    /// The entries start..<end of `list` that carry `label`, or nil.
    @inline(__always)
    func range(of label: UInt16, in list: Int) -> Range<Int>? {
        let l = lists[list]
        guard let runs = l.runs else { return nil }
        var lo = 0, hi = l.runCount
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].label < label { lo = mid + 1 } else { hi = mid }
        }
        guard lo < l.runCount, runs[lo].label == label else { return nil }
        let end = lo + 1 < l.runCount ? Int(runs[lo + 1].start) : l.count
        return Int(runs[lo].start)..<end
    }

    /// All entries of a list as (ids, labels, unpacked codes).
    func materialize(_ list: Int) -> (ids: [Int64], labels: [UInt16], codes: [UInt8]) {
        let l = lists[list]
        let m = layout.subquantizers
        var ids = [Int64](repeating: 0, count: l.count)
        var labels = [UInt16](repeating: 0, count: l.count)
        var codes = [UInt8](repeating: 0, count: l.count * m)
        guard l.count > 0 else { return (ids, labels, codes) }
        for i in 0..<l.count { ids[i] = l.ids![i] }
        for r in 0..<l.runCount {
            let start = Int(l.runs![r].start)
            let end = r + 1 < l.runCount ? Int(l.runs![r + 1].start) : l.count
            for i in start..<end { labels[i] = l.runs![r].label }
        }
        codes.withUnsafeMutableBufferPointer { out in
            for i in 0..<l.count { layout.unpack(l.codes!, entry: i, into: out.baseAddress! + i * m) }
        }
        return (ids, labels, codes)
    }

    /// Replaces a list's content: entries are stably sorted by label, runs computed, codes packed
    /// into a freshly owned buffer.
    func replace(_ list: Int, ids: [Int64], labels: [UInt16], codes: [UInt8]) {
        let n = ids.count
        let m = layout.subquantizers
        precondition(labels.count == n && codes.count == n * m, "InvertedLists.replace: inconsistent entry arrays")
        lists[list].owned?.deallocate()
        guard n > 0 else {
            lists[list] = List()
            listsByLabelValid = false
            return
        }
        // Stable counting order by label (labels are small integers, runs few).
        let order = (0..<n).sorted { labels[$0] != labels[$1] ? labels[$0] < labels[$1] : $0 < $1 }
        var runs: [LabelRun] = []
        for (pos, i) in order.enumerated() where pos == 0 || labels[i] != labels[order[pos - 1]] {
            runs.append(LabelRun(label: labels[i], start: UInt32(pos)))
        }
        let idBytes = n * 8
        let runBytes = runs.count * MemoryLayout<LabelRun>.stride
        let codeOffset = (idBytes + runBytes + 63) & ~63
        let total = codeOffset + layout.codeBytes(count: n)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 64)
        let idp = raw.bindMemory(to: Int64.self, capacity: n)
        for (pos, i) in order.enumerated() { idp[pos] = ids[i] }
        let runp = (raw + idBytes).bindMemory(to: LabelRun.self, capacity: runs.count)
        for (j, r) in runs.enumerated() { runp[j] = r }
        let codep = (raw + codeOffset).bindMemory(to: UInt8.self, capacity: total - codeOffset)
        var sortedCodes = [UInt8](repeating: 0, count: n * m)
        for (pos, i) in order.enumerated() { for t in 0..<m { sortedCodes[pos * m + t] = codes[i * m + t] } }
        sortedCodes.withUnsafeBufferPointer { layout.pack($0.baseAddress!, count: n, into: codep) }
        lists[list] = List(count: n, ids: UnsafePointer(idp), runs: UnsafePointer(runp), runCount: runs.count,
                           codes: UnsafePointer(codep), owned: raw)
        listsByLabelValid = false
    }

    /// Recomputes label -> lists after changes (O(total runs)).
    func rebuildLabelIndex() {
        guard !listsByLabelValid else { return }
        var byLabel: [[Int32]] = []
        for (li, l) in lists.enumerated() {
            for r in 0..<l.runCount {
                let label = Int(l.runs![r].label)
                if label >= byLabel.count { byLabel.append(contentsOf: repeatElement([], count: label + 1 - byLabel.count)) }
                byLabel[label].append(Int32(li))
            }
        }
        listsByLabel = byLabel
        listsByLabelValid = true
    }
}
