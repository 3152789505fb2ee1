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

    public init(bundle: ModelBundle, index: IVFPQIndex?, rules: RankingRules = RankingRules(),
                retrieval: RetrievalSettings = RetrievalSettings()) throws(RankingError) {
        let c = bundle.manifest.categoryCount
        guard c <= Int(UInt16.max) else { throw RankingError("\(c) categories do not fit the index's 16-bit labels") }
        var organic = [[Int32]](repeating: [], count: c)
        var promoted: [Int32] = []
        for (row, item) in bundle.items.enumerated() {
            if item.promoted { promoted.append(Int32(row)) } else { organic[item.category].append(Int32(row)) }
        }
        if let index {
            guard index.dimension == bundle.embeddingDimension else {
                throw RankingError("the index has dimension \(index.dimension), the bundle \(bundle.embeddingDimension)")
            }
            let expected = organic.reduce(0) { $0 + $1.count }
            guard index.count == expected else {
                throw RankingError("the index holds \(index.count) items, the bundle has \(expected) organic (non-promoted) items: rebuild it with `feedrank index build` for this bundle")
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
        if index != nil {
            let floor = rules.qualityFloor
            self.freshSource = organic.map { rows in FreshSlice(bundle: bundle, rows: rows.filter { bundle.items[Int($0)].quality >= floor }) }
        } else {
            self.freshSource = []
        }
    }

    public var categoryCount: Int { organicRows.count }
}

/// One category's organic rows at or above the quality floor, sorted by `published_at`, with
/// their embeddings copied into one contiguous matrix in that order: the items fresh at any T,
/// those with T - 24 h < published_at <= T, are a contiguous slice, scored with one sgemv.
/// (The copy costs D × 4 bytes per organic item, 256 MB per million items at D = 64.)
struct FreshSlice: Sendable {
    let rows: [Int32]
    let published: [Int64]
    let embeddings: [Float]

    init(bundle: ModelBundle, rows unsorted: [Int32]) {
        let rows = unsorted.sorted { a, b in
            let pa = bundle.items[Int(a)].publishedAt, pb = bundle.items[Int(b)].publishedAt
            return pa != pb ? pa < pb : a < b
        }
        let d = bundle.embeddingDimension
        var m = [Float](repeating: 0, count: rows.count * d)
        m.withUnsafeMutableBufferPointer { mb in
            for (i, r) in rows.enumerated() {
                let e = bundle.embeddingPointer(row: Int(r))
                for j in 0..<d { mb[i * d + j] = e[j] }
            }
        }
        self.rows = rows
        self.published = rows.map { bundle.items[Int($0)].publishedAt }
        self.embeddings = m
    }

    /// The index of the first entry published after `t`.
    func firstAfter(_ t: Int64) -> Int {
        var lo = 0, hi = published.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if published[mid] <= t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// The one error type of the ranking module.
public struct RankingError: Error, Sendable, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
