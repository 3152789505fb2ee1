import LinearAlgebra
import Ranking
import RankingModel

/// Checks a backfill L1 entry (`rankings:user:{id}` written by batch or replay --rank) against
/// contract section 3 for the user's state at the run's T, independently of the ranking code:
/// scores are recomputed exactly from the state (features, tower, dot, sigmoid, the 1.2 boost),
/// and rules 2–6, the response fields and the 24 h TTL are restated here. What it cannot check
/// is that no better organic item exists outside the index's candidates (rule 1 allows that).
/// Not thread-safe (it owns an encoder): one per thread.
public final class L1EntryCheck {
    public let catalog: RankingCatalog
    private let encoder: UserEncoder
    /// Allowed difference between a listed score and the recomputed one (the batch embeds with
    /// sgemm, this check with sgemv: the last bits of u may differ).
    public var scoreTolerance = 1e-4

    /// Rule 5 needs every promoted score per entry: one sgemv over the catalogue's contiguous
    /// promoted matrix instead of P scattered rows of the item matrix.
    private let promotedRows: [Int]
    private var promotedDots: [Float]

    public init(catalog: RankingCatalog) {
        self.catalog = catalog
        self.encoder = UserEncoder(bundle: catalog.bundle)
        promotedRows = catalog.promotedRows.map(Int.init)
        promotedDots = [Float](repeating: 0, count: promotedRows.count)
    }

    /// The violations of one entry (empty: it satisfies the contract). `ttl` is Redis's TTL
    /// of the key in seconds (-2: missing, -1: no expiry).
    public func violations(entry: [UInt8]?, ttl: Int64, user: Int64, state: UserState?, at: Int64, numItems: Int,
                           expectedTTL: Int) -> [String] {
        guard let entry else { return ["no L1 entry"] }
        let response: RankingResponse
        do { response = try RankingResponse.parse(entry) } catch { return ["unreadable: \(error.message)"] }
        var v: [String] = []
        let bundle = catalog.bundle, rules = catalog.rules
        if ttl <= Int64(expectedTTL / 2) || ttl > Int64(expectedTTL) { v.append("TTL \(ttl) s, expected the backfill TTL of \(expectedTTL) s") }
        if response.userId != user { v.append("user_id \(response.userId) in the entry of user \(user)") }
        if response.trigger != .backfill { v.append("trigger \(response.trigger.rawValue), expected backfill") }
        if response.requestId != nil { v.append("request_id \(response.requestId!) on a backfill entry") }
        if response.modelVersion != bundle.manifest.modelVersion {
            v.append("model_version \(response.modelVersion), the bundle is \(bundle.manifest.modelVersion)")
        }
        if response.coldStart != (state == nil) { v.append("cold_start \(response.coldStart) for a user \(state == nil ? "without" : "with") state") }
        let items = response.items
        if items.count > numItems || (items.count < numItems && !response.short && !response.boundHit) {
            v.append("\(items.count) items for num_items \(numItems) (short: \(response.short))")
        }
        if Set(items.map(\.itemId)).count != items.count { v.append("duplicate items (rule 6)") }

        let u = encoder.embed(state: state, at: at, device: nil)
        let impressed = state?.impressedItems(at: at, windowMs: rules.impressionWindowMs) ?? []
        func exactScore(row: Int) -> (score: Double, fresh: Bool) {
            let base = u.withUnsafeBufferPointer { catalog.scoring.score(user: $0.baseAddress!, row: row, in: bundle) }
            let age = at - bundle.items[row].publishedAt
            let fresh = age >= 0 && age < rules.freshWindowMs
            return (fresh ? base * rules.freshnessBoost : base, fresh)
        }

        var perCategory: [Int: Int] = [:], perCreator: [Int64: Int] = [:]
        var lastOrganic: RankedItem?
        var listedPromoted: [RankedItem] = []
        for (i, r) in items.enumerated() {
            if r.rank != i + 1 { v.append("rank \(r.rank) at position \(i + 1)") }
            guard let row = bundle.row(of: r.itemId) else { v.append("item \(r.itemId) is not in the bundle"); continue }
            let item = bundle.items[row]
            if item.quality < rules.qualityFloor { v.append("item \(item.id) has quality \(item.quality) < \(rules.qualityFloor) (rule 3)") }
            if impressed.contains(item.id) { v.append("item \(item.id) was impressed in the 24 h before T (rule 3)") }
            if r.promoted != item.promoted { v.append("item \(item.id) listed promoted=\(r.promoted), catalogue \(item.promoted)") }
            let (expected, fresh) = exactScore(row: row)
            if abs(expected - r.score) > scoreTolerance { v.append("item \(item.id) score \(r.score), exact \(expected) (rules 1-2)") }
            if r.reasons.contains("fresh_boost") != fresh { v.append("item \(item.id) fresh_boost reason \(!fresh) but fresh is \(fresh)") }
            if item.promoted {
                if !rules.isPromotedSlot(r.rank) { v.append("promoted item \(item.id) at rank \(r.rank) (rule 5)") }
                listedPromoted.append(r)
                continue
            }
            perCategory[item.category, default: 0] += 1
            perCreator[item.creatorId, default: 0] += 1
            if perCategory[item.category]! > rules.categoryCap { v.append("category cap broken at rank \(r.rank) (rule 4)") }
            if perCreator[item.creatorId]! > rules.creatorCap { v.append("creator cap broken at rank \(r.rank) (rule 4)") }
            if let last = lastOrganic, !(last.score > r.score || (last.score == r.score && last.itemId < r.itemId)) {
                v.append("organic order broken at rank \(r.rank): \(last.score) then \(r.score) (rule 4)")
            }
            lastOrganic = r
        }

        // Rule 5: the slots within the list hold the best eligible promoted items, best first
        // (scores from one sgemv: equal to the exact ones within the tolerance).
        let d = bundle.embeddingDimension
        catalog.promotedEmbeddings.withUnsafeBufferPointer { a in
            u.withUnsafeBufferPointer { x in
                promotedDots.withUnsafeMutableBufferPointer { y in
                    BLAS.sgemv(.none, rows: promotedRows.count, cols: d, a: a, lda: d, x: x, y: y)
                }
            }
        }
        var eligible: [(Int64, Double)] = []
        for (i, row) in promotedRows.enumerated() {
            let item = bundle.items[row]
            guard item.quality >= rules.qualityFloor, !impressed.contains(item.id) else { continue }
            let base = catalog.scoring.score(dot: promotedDots[i])
            let age = at - item.publishedAt
            eligible.append((item.id, age >= 0 && age < rules.freshWindowMs ? base * rules.freshnessBoost : base))
        }
        eligible.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        let slots = rules.promotedSlots.filter { $0 <= items.count }.count
        let expectedCount = min(slots, eligible.count)
        if listedPromoted.count != expectedCount {
            v.append("\(listedPromoted.count) promoted items in \(slots) slots with \(eligible.count) eligible (rule 5)")
        } else {
            for (k, r) in listedPromoted.enumerated() where abs(r.score - eligible[k].1) > scoreTolerance {
                v.append("promoted slot \(k + 1) holds item \(r.itemId) (\(r.score)), the next-best eligible is \(eligible[k].0) (\(eligible[k].1)) (rule 5)")
            }
        }
        return v
    }
}
