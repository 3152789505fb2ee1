import Dispatch
import LinearAlgebra

/// Results of a batch search: row q holds query q's top-k, best first; rows with fewer than k
/// results are padded with id -1 and score -infinity.
public struct BatchSearchResults: Sendable {
    public let k: Int
    public var ids: [Int64]
    public var scores: [Float]

    public var count: Int { k == 0 ? 0 : ids.count / k }

    public func neighbors(ofQuery q: Int) -> [Neighbor] {
        (0..<k).compactMap { j in ids[q * k + j] < 0 ? nil : Neighbor(id: ids[q * k + j], score: scores[q * k + j]) }
    }
}

/// Raw pointers handed to worker threads that write disjoint rows.
private struct SharedBuffers: @unchecked Sendable {
    let queries: UnsafePointer<Float>
    let ids: UnsafeMutablePointer<Int64>
    let scores: UnsafeMutablePointer<Float>
}

extension IVFPQIndex {
    /// Searches `count` queries (row-major count × D). The coarse scores of each chunk of
    /// queries come from one sgemm; chunks are spread over `threads` worker threads, each with
    /// its own searcher.
    public func search(queries: UnsafeBufferPointer<Float>, count nq: Int, k: Int,
                       parameters: SearchParameters = SearchParameters(), filter: SearchFilter = .none,
                       refine: VectorSource? = nil, threads: Int = 1) throws(VectorIndexError) -> BatchSearchResults {
        let d = dimension
        guard queries.count >= nq * d else { throw .invalid("search: \(queries.count) floats cannot hold \(nq) queries of dimension \(d)") }
        guard k >= 0 else { throw .invalid("search: k must be >= 0, got \(k)") }
        guard threads >= 1 else { throw .invalid("search: threads must be >= 1, got \(threads)") }
        var ids = [Int64](repeating: -1, count: nq * k)
        var scores = [Float](repeating: -.infinity, count: nq * k)
        guard nq > 0, k > 0, let qbase = queries.baseAddress else { return BatchSearchResults(k: k, ids: ids, scores: scores) }
        let chunk = 64
        let chunks = (nq + chunk - 1) / chunk
        let workers = min(threads, chunks)
        ids.withUnsafeMutableBufferPointer { idp in
            scores.withUnsafeMutableBufferPointer { sp in
                let shared = SharedBuffers(queries: qbase, ids: idp.baseAddress!, scores: sp.baseAddress!)
                let work: @Sendable (Int) -> Void = { w in
                    let searcher = self.makeSearcher()
                    var coarse = [Float](repeating: 0, count: chunk * self.nlist)
                    var c = w
                    while c < chunks {
                        let start = c * chunk, rows = min(chunk, nq - start)
                        self.lock.withReadLock {
                            coarse.withUnsafeMutableBufferPointer { cp in
                                self.centroids.withUnsafeBufferPointer { cent in
                                    BLAS.sgemm(.none, .transposed, m: rows, n: self.nlist, k: d,
                                               a: UnsafeBufferPointer(start: shared.queries + start * d, count: rows * d), lda: d,
                                               b: cent, ldb: d, c: cp, ldc: self.nlist)
                                }
                                for r in 0..<rows {
                                    let q = start + r
                                    let res = searcher.searchLocked(shared.queries + q * d, coarseScores: cp.baseAddress! + r * self.nlist,
                                                                    k: k, parameters: parameters, filter: filter, refine: refine)
                                    for (j, nb) in res.enumerated() {
                                        shared.ids[q * k + j] = nb.id
                                        shared.scores[q * k + j] = nb.score
                                    }
                                }
                            }
                        }
                        c += workers
                    }
                }
                if workers == 1 {
                    work(0)
                } else {
                    DispatchQueue.concurrentPerform(iterations: workers, execute: work)
                }
            }
        }
        return BatchSearchResults(k: k, ids: ids, scores: scores)
    }
}
