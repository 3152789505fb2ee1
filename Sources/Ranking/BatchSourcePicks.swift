import LinearAlgebra
import RankingModel
import VectorIndex

/// The rows the candidate sources give one ranking's first round (see `FeedRanker`): per
/// category the index candidates and the best fresh rows, and the promoted rows rule 5 may use.
public struct SourcePicks: Sendable, Equatable {
    /// Per category, the first round's index candidates (nil: the ranker searches itself).
    public var organic: [[Int32]]?
    public var fresh: [[Int32]]
    public var promoted: [Int32]
}

/// The first-round candidates of many users ranked at one time T. Index candidates: one
/// per-label search for all the users (`IVFPQSearcher.searchPerLabel(batch:)`: each inverted
/// list run is scanned by every user probing it while its codes are in cache). Fresh and promoted
/// picks, from exact dot products: one sgemm per category between the users' embeddings and the
/// rows fresh at T (and one with the promoted rows), where a single ranking makes one pass of
/// int8 dot products per source.
/// Batch jobs rank 1,000 users at the same T; this turns ~50 MFLOP of scattered int8 work per
/// user into a share of a dense product (the sources were ~1/3 of a ranking at 1M items).
///
/// The picks follow the per-ranking rules exactly (same counts, same impression filter, same
/// fresh/old split of the promoted rows); only the dot products are exact instead of
/// approximate, and the picked rows are scored exactly by the ranker either way.
///
/// Per-thread (scratch); build once per T: it copies the rows fresh at T (D floats each).
public final class BatchSourcePicks {
    public let catalog: RankingCatalog
    public let at: Int64
    private let d: Int
    /// Per category: the window of `freshSource[c]` fresh at `at`, and its rows as floats.
    private let freshWindow: [Range<Int>]
    private let freshMatrix: [[Float]]
    /// The promoted source's rows as floats, and which of them are fresh at `at`.
    private let promotedMatrix: [Float]
    private let promotedFresh: Range<Int>
    private var dots: [Float] = []
    private let searcher: IVFPQSearcher
    /// Users per sgemm: keeps the product (users × rows) within the caches.
    static let chunk = 128

    /// nil when the catalog has no index (exact retrieval has no separate sources).
    public init?(catalog: RankingCatalog, at: Int64) {
        guard let index = catalog.index else { return nil }
        self.searcher = index.makeSearcher()
        self.catalog = catalog
        self.at = at
        let d = catalog.bundle.embeddingDimension
        self.d = d
        let window = catalog.rules.freshWindowMs
        func floats(_ src: FreshSlice, _ r: Range<Int>) -> [Float] {
            var m = [Float](repeating: 0, count: r.count * d)
            for (i, row) in r.enumerated() {
                let e = catalog.bundle.embeddingPointer(row: Int(src.rows[row]))
                for j in 0..<d { m[i * d + j] = e[j] }
            }
            return m
        }
        var windows: [Range<Int>] = []
        var matrices: [[Float]] = []
        for src in catalog.freshSource {
            let r = src.firstAfter(at - window)..<src.firstAfter(at)
            windows.append(r)
            matrices.append(floats(src, r))
        }
        freshWindow = windows
        freshMatrix = matrices
        if let src = catalog.promotedSource {
            promotedMatrix = floats(src, 0..<src.count)
            promotedFresh = src.firstAfter(at - window)..<src.firstAfter(at)
        } else {
            promotedMatrix = []
            promotedFresh = 0..<0
        }
    }

    /// Picks for each of `inputs` (all ranked at `at`), whose user embeddings are the rows of
    /// `embeddings` (inputs.count × D).
    public func picks(for inputs: [RankingInput], embeddings: UnsafeBufferPointer<Float>) -> [SourcePicks] {
        let n = inputs.count
        precondition(embeddings.count >= n * d, "BatchSourcePicks: \(embeddings.count) floats for \(n) users of dimension \(d)")
        precondition(inputs.allSatisfy { $0.at == at }, "BatchSourcePicks: every input must be ranked at \(at)")
        let c = freshWindow.count
        var out = [SourcePicks](repeating: SourcePicks(organic: nil, fresh: [[Int32]](repeating: [], count: c), promoted: []), count: n)
        if n > 0 {
            catalog.categoryLabels.withUnsafeBufferPointer { labels in
                searcher.searchPerLabel(batch: embeddings.baseAddress!, count: n, labels: labels,
                                        k: catalog.retrieval.candidatesPerCategory,
                                        parameters: SearchParameters(nprobe: catalog.retrieval.nprobe,
                                                                     probeMargin: catalog.retrieval.probeMargin))
            }
            for user in 0..<n {
                out[user].organic = (0..<catalog.categoryCount).map { cat in
                    searcher.batchResults(query: user, labelAt: cat).map { Int32(truncatingIfNeeded: $0.id) }
                }
            }
        }
        let impressed = inputs.map { CandidatePass.impressedItems($0.state, at: at, windowMs: catalog.rules.impressionWindowMs) }
        let k = catalog.retrieval.freshPerCategory + FeedRanker.approximationMargin
        var start = 0
        while start < n {
            let users = start..<min(n, start + Self.chunk)
            let u = UnsafeBufferPointer(rebasing: embeddings[(users.lowerBound * d)..<(users.upperBound * d)])
            if catalog.retrieval.freshPerCategory > 0 {
                for cat in 0..<c where !freshWindow[cat].isEmpty {
                    let window = freshWindow[cat]
                    let src = catalog.freshSource[cat]
                    product(u, users: users.count, rows: freshMatrix[cat], count: window.count)
                    dots.withUnsafeBufferPointer { dots in
                        for (i, user) in users.enumerated() {
                            var best = TopRows(k: k)
                            src.offer(window, dots: dots.baseAddress! + i * window.count, dotsBase: window.lowerBound,
                                      impressed: impressed[user], to: &best)
                            out[user].fresh[cat] = best.rows
                        }
                    }
                }
            }
            promotedPicks(u, users: users, inputs: inputs, impressed: impressed, into: &out)
            start = users.upperBound
        }
        return out
    }

    /// As `FeedRanker.promotedCandidateRows`, from exact dot products.
    private func promotedPicks(_ u: UnsafeBufferPointer<Float>, users: Range<Int>, inputs: [RankingInput],
                               impressed: [IdCounts], into out: inout [SourcePicks]) {
        let rows = catalog.promotedRows
        guard !rows.isEmpty, let src = catalog.promotedSource else { return }
        let e = src.count
        var computed = false
        for (i, user) in users.enumerated() {
            let slots = catalog.rules.promotedSlots.filter { $0 <= inputs[user].numItems }.count
            guard slots > 0 else { continue }
            let m = slots + FeedRanker.approximationMargin
            guard rows.count > 2 * m else { out[user].promoted = rows; continue }
            guard e > 0 else { continue }
            if !computed {
                product(u, users: users.count, rows: promotedMatrix, count: e)
                computed = true
            }
            out[user].promoted = dots.withUnsafeBufferPointer {
                FeedRanker.promotedPicks(src, dots: $0.baseAddress! + i * e, fresh: promotedFresh, m: m, impressed: impressed[user])
            }
        }
    }

    /// dots[i · count + j] = <u_i, row_j> for the chunk's users.
    private func product(_ u: UnsafeBufferPointer<Float>, users: Int, rows: [Float], count: Int) {
        if dots.count < users * count { dots = [Float](repeating: 0, count: users * count) }
        rows.withUnsafeBufferPointer { r in
            dots.withUnsafeMutableBufferPointer { c in
                BLAS.sgemm(.none, .transposed, m: users, n: count, k: d, a: u, lda: d, b: r, ldb: d,
                           c: UnsafeMutableBufferPointer(rebasing: c[0..<(users * count)]), ldc: count)
            }
        }
    }
}
