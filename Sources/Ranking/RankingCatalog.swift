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
    /// nil: exact retrieval only.
    public let index: IVFPQIndex?
    /// The category ids as index labels, 0..<C.
    let categoryLabels: [UInt16]

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
        self.index = index
        self.categoryLabels = (0..<c).map { UInt16($0) }
    }

    public var categoryCount: Int { organicRows.count }
}

/// The one error type of the ranking module.
public struct RankingError: Error, Sendable, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
