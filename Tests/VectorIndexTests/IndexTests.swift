import Testing
@testable import VectorIndex

@Suite("IVF-PQ index: search, labels, add/remove, determinism")
struct IndexTests {
    static let data = TestData(count: 2000, dimension: 16, clusters: 12)
    static let queries = TestData(count: 20, dimension: 16, clusters: 12, seed: 8)

    @Test("exact refine over every list finds the true top-k", arguments: [8, 4])
    func refinedSearchMatchesBruteForce(bits: Int) throws {
        let index = try makeIndex(Self.data, m: bits == 8 ? 4 : 8, bits: bits)
        let searcher = index.makeSearcher()
        let source = Self.data.vectors.withUnsafeBufferPointer { VectorSource(rows: $0, dimension: 16) }
        // Keep the buffer alive for the closure: copy into a stable allocation.
        var agree = 0, total = 0
        for qi in 0..<Self.queries.count {
            let q = Self.queries.row(qi)
            let truth = Self.data.bruteForce(q, k: 10).map(\.id)
            let found = Self.data.vectors.withUnsafeBufferPointer { rows in
                searcher.search(q, k: 10, parameters: SearchParameters(nprobe: 16, refineFactor: 20),
                                refine: VectorSource(rows: rows, dimension: 16)).map(\.id)
            }
            agree += Set(truth).intersection(found).count
            total += 10
            _ = source
        }
        #expect(Double(agree) / Double(total) > 0.97, "recall \(Double(agree) / Double(total))")
    }

    @Test("approximate scores track exact inner products", arguments: [8, 4])
    func approximateScoresAreClose(bits: Int) throws {
        let index = try makeIndex(Self.data, m: bits == 8 ? 8 : 16, bits: bits)
        let searcher = index.makeSearcher()
        for qi in 0..<5 {
            let q = Self.queries.row(qi)
            for nb in searcher.search(q, k: 20, parameters: SearchParameters(nprobe: 16)) {
                let exact = zip(q, Self.data.row(Int(nb.id))).map { $0 * $1 }.reduce(0, +)
                #expect(abs(nb.score - exact) < 0.12, "id \(nb.id): approx \(nb.score) exact \(exact)")
            }
        }
    }

    @Test("label-filtered search equals brute force over that label (nprobe = nlist, full re-score)",
          arguments: [8, 4])
    func labelFilteredSearchEqualsBruteForce(bits: Int) throws {
        let index = try makeIndex(Self.data, m: bits == 8 ? 4 : 8, bits: bits, labelCount: 5)
        let searcher = index.makeSearcher()
        for qi in 0..<8 {
            let q = Self.queries.row(qi)
            for label in 0..<5 {
                let members = (0..<Self.data.count).filter { Self.data.cluster[$0] % 5 == label }
                let truth = Self.data.bruteForce(q, k: 10) { Self.data.cluster[$0] % 5 == label }
                let found = Self.data.vectors.withUnsafeBufferPointer { rows in
                    searcher.search(q, k: 10, parameters: SearchParameters(nprobe: 16, refineFactor: members.count / 10 + 1),
                                    filter: .label(UInt16(label)), refine: VectorSource(rows: rows, dimension: 16))
                }
                #expect(found.map(\.id) == truth.map(\.id))
                // Without refinement, every result still carries the label.
                let approx = searcher.search(q, k: 10, parameters: SearchParameters(nprobe: 4), filter: .label(UInt16(label)))
                #expect(approx.count == 10)
                #expect(approx.allSatisfy { Self.data.cluster[Int($0.id)] % 5 == label })
            }
        }
        #expect(index.labels == [0, 1, 2, 3, 4])
    }

    @Test("a 4-bit scan into an empty top-k (block sums first, then the k-th lane maximum as the bar) keeps what scanning every entry keeps",
          arguments: [1, 5, 16, 32])
    func boundedFirstListScanKeepsTheTopK(k: Int) throws {
        // Label runs start and end inside 32-entry blocks, so the partial-block masking counts.
        let index = try makeIndex(Self.data, m: 8, bits: 4, labelCount: 5)
        let searcher = index.makeSearcher()
        for qi in 0..<Self.queries.count {
            let q = Self.queries.row(qi)
            for label in 0..<5 {
                for nprobe in [1, 3] {
                    let params = SearchParameters(nprobe: nprobe)
                    // k > 32 keeps a binary heap, which offers it every entry.
                    let all = searcher.search(q, k: 100_000, parameters: params, filter: .label(UInt16(label)))
                    let top = searcher.search(q, k: k, parameters: params, filter: .label(UInt16(label)))
                    #expect(top.map(\.score) == Array(all.prefix(k)).map(\.score), "query \(qi) label \(label) nprobe \(nprobe)")
                }
            }
        }
    }

    @Test("a label's probes picked from its lists' lane maxima are the probes pushing every list gives (among lists tied at the last probe's score, possibly others), for 1 to 9 probes and 0 to 64 lists")
    func probeSelectionFromLaneBarEqualsPushingEveryList() throws {
        let index = try makeIndex(Self.data, nlist: 64, m: 8, bits: 4)
        let searcher = index.makeSearcher()
        let h = index.centroidHalfNorms
        var rng = SplitMix64(seed: 17)
        var coarse = [Float](repeating: 0, count: 64)
        var reference = TopKHeap(capacity: 1)
        defer { reference.deallocate() }
        let expected = UnsafeMutablePointer<Neighbor>.allocate(capacity: 64)
        defer { expected.deallocate() }
        for trial in 0..<300 {
            // Coarse scores on a grid (the half norms added back), so that probe scores tie in
            // half the trials.
            let grid = trial % 2 == 0
            for l in 0..<64 { coarse[l] = (grid ? Float(rng.next() % 6) / 4 : Float(rng.next() % 1_000_000) / 1e6) + h[l] }
            var lists = Array(0..<Int32(64))
            for i in stride(from: 63, to: 0, by: -1) { lists.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let candidates = Array(lists.prefix(Int(rng.next() % 65)))
            for want in 1...9 {
                reference.reset(capacity: want)
                for l in candidates { reference.push(coarse[Int(l)] - h[Int(l)], Int64(l)) }
                let n = reference.sortedResults(into: expected)
                let got = coarse.withUnsafeBufferPointer { c in
                    candidates.withUnsafeBufferPointer { searcher.selectProbes(want, candidates: $0, coarse: c.baseAddress!) }
                }
                let mine = (0..<got).map { searcher.probes[$0] }, theirs = (0..<n).map { expected[$0] }
                #expect(got == min(want, candidates.count) && n == got, "trial \(trial) want \(want)")
                #expect(mine.map(\.score) == theirs.map(\.score), "trial \(trial) want \(want)")
                #expect(Set(mine.map(\.id)).count == got && mine.allSatisfy { candidates.contains(Int32($0.id)) && coarse[Int($0.id)] - h[Int($0.id)] == $0.score })
                // Lists above the last probe's score are the same lists; without ties, all are.
                let last = theirs.last?.score ?? 0
                #expect(mine.filter { $0.score > last } == theirs.filter { $0.score > last }, "trial \(trial) want \(want)")
                if !grid { #expect(mine == theirs, "trial \(trial) want \(want) of \(candidates.count)") }
            }
        }
    }

    @Test("per-label search returns, for each label, what a single-label search returns")
    func perLabelSearchMatchesSingleLabelSearches() throws {
        let index = try makeIndex(Self.data, m: 8, bits: 4, labelCount: 6)
        let searcher = index.makeSearcher()
        let q = Self.queries.row(3)
        let labels: [UInt16] = [5, 0, 3, 9]   // 9 does not exist: empty result
        let params = SearchParameters(nprobe: 3)
        let all = searcher.searchPerLabel(q, labels: labels, k: 7, parameters: params)
        #expect(all.count == 4)
        for (i, label) in labels.enumerated() {
            let single = searcher.search(q, k: 7, parameters: params, filter: .label(label))
            #expect(all[i] == single, "label \(label)")
        }
        #expect(all[3].isEmpty)
        #expect(all[0].count == 7)
    }

    @Test("a probe margin of 0 scans a label's best list alone when it holds k of the label's entries, and more lists only until k are held")
    func zeroProbeMarginScansTheBestList() throws {
        let index = try makeIndex(Self.data, m: 8, bits: 4, labelCount: 5)
        let searcher = index.makeSearcher()
        var alone = 0, extended = 0
        for qi in 0..<Self.queries.count {
            let q = Self.queries.row(qi)
            for label in 0..<5 {
                for k in [3, 40] {
                    let one = searcher.search(q, k: k, parameters: SearchParameters(nprobe: 1), filter: .label(UInt16(label)))
                    let all = searcher.search(q, k: k, parameters: SearchParameters(nprobe: 4), filter: .label(UInt16(label)))
                    searcher.resetStatistics()
                    let margin = searcher.search(q, k: k, parameters: SearchParameters(nprobe: 4, probeMargin: 0), filter: .label(UInt16(label)))
                    let lists = searcher.statistics.listsScanned
                    if one.count >= k {
                        // The best list holds k: nothing else is scanned.
                        #expect(margin == one, "query \(qi) label \(label) k \(k)")
                        #expect(lists == 1)
                        alone += 1
                    } else {
                        // Lists are added until k are held (or the 4 run out).
                        #expect(margin.count == min(k, all.count), "query \(qi) label \(label) k \(k)")
                        #expect(lists > 1)
                        extended += 1
                    }
                }
            }
        }
        #expect(alone > 0 && extended > 0, "both cases occur: \(alone) / \(extended)")
    }

    @Test("per-label search of many queries at once returns each query's per-label results (up to rounding and ties)",
          arguments: [(4, Float.infinity), (8, .infinity), (4, 0.05), (4, 0)])
    func batchedPerLabelSearchMatchesPerQuery(bits: Int, probeMargin: Float) throws {
        let index = try makeIndex(Self.data, m: 8, bits: bits, labelCount: 6)
        let searcher = index.makeSearcher(), single = index.makeSearcher()
        let labels: [UInt16] = [5, 0, 3, 9, 1]   // 9 does not exist: empty results
        let params = SearchParameters(nprobe: 3, probeMargin: probeMargin)
        let n = Self.queries.count
        let queries = (0..<n).flatMap { Self.queries.row($0) }
        queries.withUnsafeBufferPointer { q in
            labels.withUnsafeBufferPointer { searcher.searchPerLabel(batch: q.baseAddress!, count: n, labels: $0, k: 7, parameters: params) }
        }
        var nonEmpty = 0
        for qi in 0..<n {
            let expected = single.searchPerLabel(Self.queries.row(qi), labels: labels, k: 7, parameters: params)
            for li in labels.indices {
                let got = Array(searcher.batchResults(query: qi, labelAt: li))
                let want = expected[li]
                // The coarse scores come from one sgemm instead of an sgemv: equal up to rounding.
                #expect(got.count == want.count, "query \(qi) label \(labels[li])")
                for (g, w) in zip(got, want) { #expect(abs(g.score - w.score) <= 1e-5, "query \(qi) label \(labels[li])") }
                // The same items, except where a score ties the k-th one (either may be kept).
                if let kth = want.last?.score {
                    let differing = Set(got.map(\.id)).symmetricDifference(want.map(\.id))
                    let scores = Dictionary((got + want).map { ($0.id, $0.score) }, uniquingKeysWith: { a, _ in a })
                    #expect(differing.allSatisfy { abs(scores[$0]! - kth) <= 1e-5 }, "query \(qi) label \(labels[li])")
                }
                if !got.isEmpty { nonEmpty += 1 }
            }
            #expect(searcher.batchResults(query: qi, labelAt: 3).isEmpty)
        }
        #expect(nonEmpty == n * 4)
    }

    @Test("predicate filter returns only accepted ids")
    func predicateFilter() throws {
        let index = try makeIndex(Self.data)
        let found = index.makeSearcher().search(Self.queries.row(0), k: 15, parameters: SearchParameters(nprobe: 16),
                                                filter: .predicate { $0 % 3 == 0 })
        #expect(found.count == 15)
        #expect(found.allSatisfy { $0.id % 3 == 0 })
    }

    @Test("add, remove, re-add: removed ids vanish from results and counts, re-added ones return")
    func addRemoveSearchConsistency() throws {
        let index = try makeIndex(Self.data, m: 8, bits: 4, labelCount: 3)
        #expect(index.count == 2000)
        let searcher = index.makeSearcher()
        let exact = SearchParameters(nprobe: 16, refineFactor: 300)
        func top1(_ i: Int) -> Int64? {
            Self.data.vectors.withUnsafeBufferPointer { rows in
                searcher.search(Self.data.row(i), k: 1, parameters: exact, refine: VectorSource(rows: rows, dimension: 16)).first?.id
            }
        }
        // Every vector is its own nearest neighbour by inner product (unit norm).
        for i in stride(from: 0, to: 2000, by: 50) { #expect(top1(i) == Int64(i)) }
        let doomed = (0..<2000).filter { $0 % 4 == 1 }.map(Int64.init)
        #expect(index.remove(ids: doomed) == doomed.count)
        #expect(index.count == 2000 - doomed.count)
        #expect(index.remove(ids: doomed) == 0)
        let doomedSet = Set(doomed)
        for qi in 0..<10 {
            let res = searcher.search(Self.queries.row(qi), k: 50, parameters: SearchParameters(nprobe: 16))
            #expect(!res.contains { doomedSet.contains($0.id) })
        }
        for i in stride(from: 1, to: 2000, by: 100) { #expect(top1(i) != Int64(i)) }
        // Re-add a few under new labels, with the same ids.
        let back = [1, 5, 9]
        let vectors = back.flatMap { Self.data.row($0) }
        try vectors.withUnsafeBufferPointer { try index.add($0, ids: back.map(Int64.init), labels: [7, 7, 7]) }
        #expect(index.count == 2000 - doomed.count + 3)
        for i in back { #expect(top1(i) == Int64(i)) }
        let seven = searcher.search(Self.data.row(5), k: 10, parameters: SearchParameters(nprobe: 16), filter: .label(7))
        #expect(Set(seven.map(\.id)) == [1, 5, 9])
    }

    @Test("batch search (1 and 2 threads) returns what single searches return")
    func batchSearchMatchesSingleSearch() throws {
        let index = try makeIndex(Self.data, bits: 4, labelCount: 3)
        let searcher = index.makeSearcher()
        let params = SearchParameters(nprobe: 4)
        for threads in [1, 2] {
            let batch = try Self.queries.vectors.withUnsafeBufferPointer {
                try index.search(queries: $0, count: Self.queries.count, k: 5, parameters: params, threads: threads)
            }
            for qi in 0..<Self.queries.count {
                let single = searcher.search(Self.queries.row(qi), k: 5, parameters: params)
                #expect(batch.neighbors(ofQuery: qi).map(\.id) == single.map(\.id))
                for (a, b) in zip(batch.neighbors(ofQuery: qi), single) { #expect(abs(a.score - b.score) < 1e-4) }
            }
        }
    }

    @Test("the same seed and data give the same index and results; another seed differs")
    func determinismWithFixedSeed() throws {
        let a = try makeIndex(Self.data, bits: 8, seed: 42)
        let b = try makeIndex(Self.data, bits: 8, seed: 42)
        let c = try makeIndex(Self.data, bits: 8, seed: 43)
        #expect(a.centroids == b.centroids)
        #expect(a.pq.codebooks == b.pq.codebooks)
        #expect(a.centroids != c.centroids)
        #expect(a.listSizes == b.listSizes)
        let sa = a.makeSearcher(), sb = b.makeSearcher()
        for qi in 0..<10 {
            let q = Self.queries.row(qi)
            #expect(sa.search(q, k: 10, parameters: SearchParameters(nprobe: 4)) == sb.search(q, k: 10, parameters: SearchParameters(nprobe: 4)))
        }
    }

    @Test("bad arguments are rejected with clear errors")
    func badArguments() throws {
        #expect(throws: VectorIndexError.self) { try IVFPQIndex(configuration: IVFPQConfiguration(dimension: 10, nlist: 4, subquantizers: 3)) }
        #expect(throws: VectorIndexError.self) { try IVFPQIndex(configuration: IVFPQConfiguration(dimension: 12, nlist: 4, subquantizers: 3, bitsPerCode: 4)) }
        let index = try IVFPQIndex(configuration: IVFPQConfiguration(dimension: 4, nlist: 2, subquantizers: 2))
        let vectors = [Float](repeating: 0, count: 8)
        let e = thrownError { () throws(VectorIndexError) in
            try vectors.withUnsafeBufferPointer { (p) throws(VectorIndexError) in try index.add(p, ids: [1, 2]) }
        }
        #expect(e?.code == .notTrained)
    }
}
