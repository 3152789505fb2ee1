import LinearAlgebra
import RankingModel
import VectorIndex

/// Everything ranking reads and nobody writes: the bundle, the rules, the per-category
/// organic rows, the promoted items, and the IVF-PQ index over the organic items (ids are
/// bundle rows, labels are category ids). Shared by all rankers, immutable.
public final class RankingCatalog: Sendable {
    public let bundle: ModelBundle
    public let rules: RankingRules
    public let retrieval: RetrievalSettings
    public let scoring: Scoring
    /// Organic (non-promoted) rows of each category.
    public let organicRows: [[Int32]]
    /// Promoted rows (rule 1: scored exactly on every request, never from the index).
    public let promotedRows: [Int32]
    /// The promoted items' embeddings, one contiguous P × D matrix in `promotedRows` order.
    package let promotedEmbeddings: [Float]
    /// nil: exact retrieval only.
    public let index: IVFPQIndex?
    /// The category ids as index labels, 0..<C.
    let categoryLabels: [UInt16]
    /// The fresh source, per category (built only with an index: exact retrieval scores
    /// everything anyway).
    let freshSource: [FreshSlice]
    /// Whether a ranking prefetches its candidates' rows (`CandidatePass.prefetch`): only when
    /// the embeddings are well beyond the last-level cache (misses to memory then; at 100,000
    /// items the rows mostly come from L3, and the hints cost what they saved).
    let prefetchRows: Bool
    /// The embeddings' size from which rankings prefetch (128 MB; the 100,000-item demo world's
    /// are 25.6 MB, the 1,000,000-item one's 256 MB).
    static let prefetchBytes = 128 << 20
    /// The promoted items rule 5 can ever use (quality at or above the floor), by
    /// `published_at`, for the promoted picks (built only with an index).
    let promotedSource: FreshSlice?
    /// The principal axes the fresh and promoted sources' int8 rows are stored on (nil: the
    /// embeddings as they are).
    let projection: EmbeddingProjection?

    public init(bundle: ModelBundle, index: IVFPQIndex?, rules: RankingRules = RankingRules(),
                retrieval: RetrievalSettings = RetrievalSettings()) throws(RankingError) {
        let c = bundle.manifest.categoryCount
        guard c <= Int(UInt16.max) else { throw RankingError("\(c) categories do not fit the index's 16-bit labels") }
        var organic = [[Int32]](repeating: [], count: c)
        var promoted: [Int32] = []
        for (row, item) in bundle.items.enumerated() {
            if item.promoted { promoted.append(Int32(row)) } else { organic[item.category].append(Int32(row)) }
        }
        // The rows the index holds and the fresh source keeps: organic, at or above the floor.
        let indexed = index == nil ? [] : organic.map { rows in
            rows.filter { RankingIndexBuilder.indexes(bundle.items[Int($0)], qualityFloor: rules.qualityFloor) }
        }
        if let index {
            guard index.dimension == bundle.embeddingDimension else {
                throw RankingError("the index has dimension \(index.dimension), the bundle \(bundle.embeddingDimension)")
            }
            let expected = indexed.reduce(0) { $0 + $1.count }
            guard index.count == expected else {
                throw RankingError("the index holds \(index.count) items, the bundle has \(expected) organic (non-promoted) items at or above the quality floor \(rules.qualityFloor): rebuild it with `feedrank index build` for this bundle")
            }
        }
        guard !rules.promotedSlots.contains(where: { $0 < 1 }), rules.promotedSlots == rules.promotedSlots.sorted() else {
            throw RankingError("promoted slots must be ascending ranks >= 1, got \(rules.promotedSlots)")
        }
        self.bundle = bundle
        self.rules = rules
        self.retrieval = retrieval
        self.scoring = Scoring(manifest: bundle.manifest)
        self.organicRows = organic
        self.promotedRows = promoted
        let d = bundle.embeddingDimension
        var pm = [Float](repeating: 0, count: promoted.count * d)
        for (i, r) in promoted.enumerated() {
            let e = bundle.embeddingPointer(row: Int(r))
            for j in 0..<d { pm[i * d + j] = e[j] }
        }
        self.promotedEmbeddings = pm
        self.index = index
        self.categoryLabels = (0..<c).map { UInt16($0) }
        self.prefetchRows = bundle.itemCount * d * MemoryLayout<Float>.size >= Self.prefetchBytes
        if index != nil {
            let floor = rules.qualityFloor
            let eligiblePromoted = promoted.filter { bundle.items[Int($0)].quality >= floor }
            let projection = EmbeddingProjection.fit(bundle: bundle, rows: indexed.flatMap { $0 } + eligiblePromoted)
            self.projection = projection
            let columns = SliceColumns(counts: indexed.map(\.count) + [eligiblePromoted.count])
            self.freshSource = indexed.enumerated().map { c, rows in
                FreshSlice(bundle: bundle, rows: rows, projection: projection, columns: columns, slot: c)
            }
            self.promotedSource = FreshSlice(bundle: bundle, rows: eligiblePromoted, projection: projection,
                                             columns: columns, slot: indexed.count)
        } else {
            self.freshSource = []
            self.promotedSource = nil
            self.projection = nil
        }
    }

    public var categoryCount: Int { organicRows.count }

    /// Category `c`'s rows the index holds (at or above the quality floor), by `published_at`.
    func indexedRows(category c: Int) -> [Int32] { Array(freshSource[c].rows) }

    /// How many rows of category `c` the index holds.
    func indexedCount(category c: Int) -> Int { freshSource[c].count }
}

/// Rows at or above the quality floor (one category's organic rows, or the promoted rows) sorted
/// by `published_at`, with an int8 copy of their embeddings in that order: the items fresh at
/// any T, those with T - 24 h < published_at <= T, are a contiguous slice whose approximate dot
/// products are one pass over D + 8 bytes per item (the few rows picked are then scored
/// exactly like every other candidate). The copy costs D + 8 bytes per item (codes, a scale and
/// a code sum per row), 69 MiB per million items at D = 64. A class: a ranking reads every
/// category's slice, and copying a struct of five arrays retained and released each of them.
/// Its rows, times and ids live in a `SliceColumns` block (shared by the catalogue's slices).
final class FreshSlice: @unchecked Sendable {
    let rows: UnsafeBufferPointer<Int32>
    let published: UnsafeBufferPointer<Int64>
    /// Item ids in `rows` order (the impression filter without touching the items).
    let ids: UnsafeBufferPointer<Int64>
    let embeddings: Int8Rows
    /// Owns `rows`, `published` and `ids`.
    private let columns: SliceColumns

    /// With a projection the int8 rows hold each row's `kept` projected coordinates after the
    /// leading one, which rides along as the rows' float lead (`Int8Rows` leads). The columns go
    /// to `columns`' `slot` (sized for `rows`), or to a block of this slice's own.
    init(bundle: ModelBundle, rows unsorted: [Int32], projection: EmbeddingProjection? = nil,
         columns: SliceColumns? = nil, slot: Int = 0) {
        let rows = unsorted.sorted { a, b in
            let pa = bundle.items[Int(a)].publishedAt, pb = bundle.items[Int(b)].publishedAt
            return pa != pb ? pa < pb : a < b
        }
        let columns = columns ?? SliceColumns(counts: [rows.count])
        let (r, p, i) = columns.columns(slot)
        precondition(r.count == rows.count, "FreshSlice: slot \(slot) holds \(r.count) rows, not \(rows.count)")
        for (j, row) in rows.enumerated() {
            let item = bundle.items[Int(row)]
            r[j] = row
            p[j] = item.publishedAt
            i[j] = item.id
        }
        self.columns = columns
        self.rows = UnsafeBufferPointer(r)
        self.published = UnsafeBufferPointer(p)
        self.ids = UnsafeBufferPointer(i)
        if let projection {
            let w = 1 + projection.kept
            var projected = [Float](repeating: 0, count: rows.count * w)
            projected.withUnsafeMutableBufferPointer { p in
                for (i, r) in rows.enumerated() { projection.project(bundle.embeddingPointer(row: Int(r)), into: p.baseAddress! + i * w) }
            }
            self.embeddings = projected.withUnsafeBufferPointer { p in
                Int8Rows(count: rows.count, dimension: projection.kept, row: { p.baseAddress! + $0 * w + 1 }, lead: { p[$0 * w] })
            }
        } else {
            self.embeddings = Int8Rows(count: rows.count, dimension: bundle.embeddingDimension) { bundle.embeddingPointer(row: Int(rows[$0])) }
        }
    }

    var count: Int { rows.count }

    /// `firstAfter(t)`, checking `hint` (the answer for a nearby t, e.g. the last ranking's;
    /// -1 for none) first: two loads instead of ~12 dependent ones when it is still right, as
    /// it is for most requests (the window's edges move only when an item crosses them).
    @inline(__always)
    func firstAfter(_ t: Int64, hint: Int) -> Int {
        let p = published
        let valid = hint >= 0 && hint <= p.count && (hint == 0 || p[hint - 1] <= t) && (hint == p.count || p[hint] > t)
        return valid ? hint : firstAfter(t)
    }

    /// The index of the first entry published after `t`. Branch-free halving (a compare and a
    /// conditional move per step): the branchy search mispredicted about every other step, 40
    /// searches a ranking.
    func firstAfter(_ t: Int64) -> Int {
        let p = published
        var base = 0, n = p.count
        guard n > 0 else { return 0 }
        while n > 1 {
            let half = n / 2
            base = p[base + half - 1] <= t ? base + half : base
            n -= half
        }
        return p[base] <= t ? base + 1 : base
    }
}

/// The fresh and promoted slices' rows, publication times and item ids, all slices in one
/// block: at a million items 20 MB that rankings read at random (a row and an id per fresh or
/// promoted candidate, the window's edges), so on transparent huge pages from
/// `HugePageMemory.minimumBytes`, like the item table (a TLB miss per read on 4 KiB pages).
/// Filled once while the catalogue is built, read-only after.
final class SliceColumns: @unchecked Sendable {
    private let huge: HugePageMemory?
    private let heap: UnsafeMutableRawPointer?
    private let base: UnsafeMutableRawPointer
    private let starts: [Int]
    private let total: Int

    /// Room for slices of `counts` rows (slot i holds counts[i]).
    init(counts: [Int]) {
        var starts: [Int] = [], total = 0
        for c in counts { starts.append(total); total += c }
        starts.append(total)
        self.starts = starts
        self.total = total
        // Per row: a time and an id (8 bytes each), then a row (4 bytes).
        let bytes = max(1, total * 20)
        if HugePageMemory.shouldCopy(byteCount: bytes), let m = HugePageMemory(zeroedByteCount: bytes) {
            huge = m
            heap = nil
            base = m.mutableBase
        } else {
            huge = nil
            let h = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            heap = h
            base = h
        }
    }

    deinit { heap?.deallocate() }

    /// Slot `slot`'s rows, publication times and ids, to fill.
    func columns(_ slot: Int) -> (rows: UnsafeMutableBufferPointer<Int32>, published: UnsafeMutableBufferPointer<Int64>,
                                  ids: UnsafeMutableBufferPointer<Int64>) {
        let from = starts[slot], n = starts[slot + 1] - from
        let published = base.bindMemory(to: Int64.self, capacity: 2 * total)
        let rows = (base + 16 * total).bindMemory(to: Int32.self, capacity: total)
        return (UnsafeMutableBufferPointer(start: rows + from, count: n),
                UnsafeMutableBufferPointer(start: published + from, count: n),
                UnsafeMutableBufferPointer(start: published + total + from, count: n))
    }
}

/// The one error type of the ranking module.
public struct RankingError: Error, Sendable, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
