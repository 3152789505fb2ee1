import Ranking
import RankingModel

/// Rules 3–6 of contract section 3 checked on a returned list, against the catalogue; returns
/// the violations (empty when the list is valid).
public enum ContractChecker {
    public static func violations(_ items: [RankedItem], bundle: ModelBundle, state: UserState?, at: Int64,
                                  numItems: Int, rules: RankingRules = RankingRules()) -> [String] {
        var v: [String] = []
        if items.count > numItems { v.append("\(items.count) items for num_items \(numItems)") }
        if Set(items.map(\.itemId)).count != items.count { v.append("duplicate items") }
        var impressed = Set<Int64>()
        for imp in state?.impressions ?? [] where imp.ts >= at - rules.impressionWindowMs && imp.ts <= at { impressed.insert(imp.itemId) }
        var cat: [Int: Int] = [:], creator: [Int64: Int] = [:]
        var last: (Double, Int64)?
        for (i, r) in items.enumerated() {
            if r.rank != i + 1 { v.append("rank \(r.rank) at position \(i + 1)") }
            guard let item = bundle.item(id: r.itemId) else { v.append("unknown item \(r.itemId)"); continue }
            if item.quality < rules.qualityFloor { v.append("item \(item.id) below the quality floor") }
            if impressed.contains(item.id) { v.append("item \(item.id) was shown in the last 24 h") }
            if r.promoted != item.promoted { v.append("item \(item.id) promoted flag \(r.promoted)") }
            let age = at - item.publishedAt
            let fresh = age >= 0 && age < rules.freshWindowMs
            if r.reasons.contains("fresh_boost") != fresh { v.append("item \(item.id) fresh reason wrong") }
            if r.promoted {
                if !rules.promotedSlots.contains(r.rank) { v.append("promoted item at rank \(r.rank)") }
                continue
            }
            cat[item.category, default: 0] += 1
            creator[item.creatorId, default: 0] += 1
            if cat[item.category]! > rules.categoryCap { v.append("category cap broken at rank \(r.rank)") }
            if creator[item.creatorId]! > rules.creatorCap { v.append("creator cap broken at rank \(r.rank)") }
            if let (s, id) = last, !(s > r.score || (s == r.score && id < r.itemId)) { v.append("organic order broken at rank \(r.rank)") }
            last = (r.score, r.itemId)
        }
        return v
    }
}
