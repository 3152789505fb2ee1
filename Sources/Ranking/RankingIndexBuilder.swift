import RankingModel
import VectorIndex

/// Builds the IVF-PQ index ranking uses: the bundle's organic (non-promoted) items at or above
/// the quality floor (rule 3: the others can never appear, so scanning and re-scoring them was
/// wasted: 14 % of the demo worlds' items), id = bundle row, label = category id. One builder
/// for `feedrank index build`, `serve` and tests; `RankingCatalog` checks that an index holds
/// exactly these items.
public enum RankingIndexBuilder {
    /// Defaults sized for the catalogue (the same as `feedrank index build`'s): the largest power
    /// of two <= 4·sqrt(N) lists, 4-bit fast-scan codes with M = D sub-quantizers (32 bytes per
    /// item at D = 64), which measured best for recall per scanned byte.
    public static func defaultConfiguration(itemCount n: Int, dimension d: Int) -> IVFPQConfiguration {
        var nlist = 1
        while nlist * 2 <= max(1, Int(4 * Double(n).squareRoot())) { nlist *= 2 }
        nlist = max(1, min(nlist, n))
        let m = d % 2 == 0 && d <= 256 ? d : max(2, d / 2)
        return IVFPQConfiguration(dimension: d, nlist: nlist, subquantizers: m, bitsPerCode: m % 2 == 0 ? 4 : 8)
    }

    /// Below this many organic items an index is not worth it: ranking scores them all exactly.
    public static let minimumItems = 256

    /// nil when the catalogue is too small for an index (`minimumItems`).
    public static func buildIfUseful(bundle: ModelBundle, qualityFloor: Double = RankingRules().qualityFloor,
                                     configuration: IVFPQConfiguration? = nil,
                                     progress: ((_ phase: String, _ done: Int, _ total: Int) -> Void)? = nil) throws(VectorIndexError) -> IVFPQIndex? {
        guard indexedRows(bundle, qualityFloor: qualityFloor).count >= minimumItems else { return nil }
        return try build(bundle: bundle, qualityFloor: qualityFloor, configuration: configuration, progress: progress)
    }

    /// Whether an index holds `item`: organic, quality at or above `qualityFloor`.
    public static func indexes(_ item: Item, qualityFloor: Double) -> Bool {
        !item.promoted && item.quality >= qualityFloor
    }

    /// The rows an index for `bundle` holds (`indexes`).
    public static func indexedRows(_ bundle: ModelBundle, qualityFloor: Double) -> [Int] {
        bundle.items.indices.filter { indexes(bundle.items[$0], qualityFloor: qualityFloor) }
    }

    public static func build(bundle: ModelBundle, qualityFloor: Double = RankingRules().qualityFloor,
                             configuration: IVFPQConfiguration? = nil,
                             progress: ((_ phase: String, _ done: Int, _ total: Int) -> Void)? = nil) throws(VectorIndexError) -> IVFPQIndex {
        let d = bundle.embeddingDimension
        let organic = indexedRows(bundle, qualityFloor: qualityFloor)
        var cfg = configuration ?? defaultConfiguration(itemCount: organic.count, dimension: d)
        cfg.nlist = max(1, min(cfg.nlist, organic.count))
        let index = try IVFPQIndex(configuration: cfg)
        try bundle.withItemEmbeddings { (all) throws(VectorIndexError) in
            // Promoted items are few; training on every row is as good and needs no copy.
            try index.train(all, count: bundle.itemCount) { p in progress?(p.phase, p.done, p.total) }
            let chunk = 65_536
            var buffer = [Float](repeating: 0, count: min(chunk, max(1, organic.count)) * d)
            var start = 0
            while start < organic.count {
                let rows = organic[start..<min(start + chunk, organic.count)]
                for (j, row) in rows.enumerated() {
                    for t in 0..<d { buffer[j * d + t] = all[row * d + t] }
                }
                let ids = rows.map { Int64($0) }
                let labels = rows.map { UInt16(bundle.items[$0].category) }
                let done = start
                try buffer.withUnsafeBufferPointer { (b) throws(VectorIndexError) in
                    try index.add(UnsafeBufferPointer(rebasing: b[0..<(rows.count * d)]), ids: ids, labels: labels) { p in
                        progress?("adding", done + p.done * rows.count / max(1, p.total), organic.count)
                    }
                }
                start += rows.count
            }
        }
        progress?("ordering", 0, 1)
        index.orderAlongPrincipalAxis()
        progress?("ordering", 1, 1)
        return index
    }
}
