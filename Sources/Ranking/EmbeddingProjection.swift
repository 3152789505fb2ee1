import LinearAlgebra
import RankingModel

/// The item embeddings' principal axes, for the fresh and promoted sources' approximate dot
/// products on large catalogues: a row's coordinate on the leading axis (kept as a float) and on
/// the next `kept` axes (int8), the remaining axes dropped. Exact scores never use it.
///
/// The model's item embeddings are far from isotropic (1M world: the leading axis, about the
/// mean direction, holds ~86 % of an item's energy, 1 + 32 axes 99.79 %), so the int8 pass
/// reads 32 codes per row instead of 64. The dropped axes cost an error of |u_tail|·|x_tail| at
/// most, and the approximate order among a category's best fresh rows gets coarser (in a
/// simulation over 300 users of the 1M world 9 % of the exact best four fell outside the
/// approximate best four, against 3.2 % with all 64 axes in int8; outside the best eight:
/// 0.15 % against 0.004 %). So with a projection `FeedRanker` puts each category's picks in
/// exact dot order before choosing which it scores first.
struct EmbeddingProjection: Sendable, Equatable {
    /// D.
    let dimension: Int
    /// Axes kept after the leading one (a multiple of 4: whole groups of the int8 kernel).
    let kept: Int
    /// (1 + kept) × D, row k the unit vector of axis k (descending variance).
    let axes: [Float]
    /// The share of the sampled rows' energy on the kept axes (leading included).
    let energy: Double

    /// Rows sampled for the second-moment matrix (every n-th row, deterministic).
    static let sampleLimit = 65_536

    /// Catalogues with fewer eligible rows keep full int8 rows. Each category's fresh window is
    /// short there (~150 rows at 100k items) and the exact ordering of the picks the projection
    /// needs (`FeedRanker`) costs more than the halved pass saves: 100k now -7 % rankings/s,
    /// 1M now +5 % (three interleaved rounds each).
    static let minimumRows = 400_000

    /// The projection of `rows`' embeddings that keeps at least `minimumEnergy` of their
    /// energy, or nil when that needs more than 5/8 of the axes or there are fewer than
    /// `minimumRows` rows: then the rows are used as they are. 0.9975 keeps 1 + 32 axes of the
    /// demo worlds' 64 (1 + 28 hold 99.70 %, 1 + 24 gave 1.7 % outside the best eight).
    static func fit(bundle: ModelBundle, rows: [Int32], minimumEnergy: Double = 0.9975,
                    minimumRows: Int = EmbeddingProjection.minimumRows) -> EmbeddingProjection? {
        let d = bundle.embeddingDimension
        guard d >= 16, !rows.isEmpty, rows.count >= minimumRows else { return nil }
        let step = max(1, (rows.count + sampleLimit - 1) / sampleLimit)
        let sample = stride(from: 0, to: rows.count, by: step).map { Int(rows[$0]) }
        var s = [Float](repeating: 0, count: sample.count * d)
        for (i, r) in sample.enumerated() {
            let e = bundle.embeddingPointer(row: r)
            for j in 0..<d { s[i * d + j] = e[j] }
        }
        var m = [Float](repeating: 0, count: d * d)
        s.withUnsafeBufferPointer { sp in
            m.withUnsafeMutableBufferPointer { mp in
                BLAS.sgemm(.transposed, .none, m: d, n: d, k: sample.count, alpha: 1 / Float(sample.count),
                           a: sp, lda: d, b: sp, ldb: d, c: mp, ldc: d)
            }
        }
        let (values, vectors) = BLAS.symmetricEigen(m, n: d)
        let total = values.reduce(0.0) { $0 + Double(max(0, $1)) }
        guard total > 0 else { return nil }
        var kept = 4, have = 0.0
        for k in 0...kept { have += Double(max(0, values[k])) }
        while have / total < minimumEnergy && 1 + kept + 4 < d {
            for k in (kept + 1)...(kept + 4) { have += Double(max(0, values[k])) }
            kept += 4
        }
        // More than 5/8 of the axes saves too little to be worth an approximation of its own.
        guard have / total >= minimumEnergy, 8 * kept <= 5 * d else { return nil }
        return EmbeddingProjection(dimension: d, kept: kept, axes: Array(vectors.prefix((1 + kept) * d)), energy: have / total)
    }

    /// The 1 + `kept` coordinates of the D floats at `x` (lead first) into `out`.
    func project(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let d = dimension
        axes.withUnsafeBufferPointer { a in
            BLAS.sgemv(.none, rows: 1 + kept, cols: d, a: a, lda: d, x: UnsafeBufferPointer(start: x, count: d),
                       y: UnsafeMutableBufferPointer(start: out, count: 1 + kept))
        }
    }
}
