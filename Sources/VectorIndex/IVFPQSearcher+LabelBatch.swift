import LinearAlgebra

/// Per-label search for many queries at once (batch ranking: 1,000 users, 20 categories each).
///
/// One query at a time, each (list, label) run a query probes is read from memory for that query
/// alone; at 1M items that is ~2.7 MB of codes per query and the scan waits on memory. Here the
/// probes of all queries are collected first and sorted by (list, label), so each run is scanned
/// by every query that probes it one after another while its codes are in cache (each query's
/// best list in a first phase, the others in a second). The coarse scores come from one sgemm.
/// Results are those of `searchPerLabel` per query up to rounding of the coarse scores and ties
/// at the k-th score.
extension IVFPQSearcher {
    /// Top-`k` per label in `labels` for each of `count` queries (row-major count × D). Read the
    /// results with `batchResults(query:labelAt:)`, valid until the next search. 4-bit indexes
    /// only use the shared scans; others run `searchPerLabel` per query.
    public func searchPerLabel(batch queries: UnsafePointer<Float>, count n: Int, labels: UnsafeBufferPointer<UInt16>,
                               k: Int, parameters: SearchParameters = SearchParameters()) {
        let nl = labels.count, kk = max(0, k)
        batchShape = (n, nl, kk)
        let slots = n * nl
        if batchResultCounts.count < slots { batchResultCounts = [Int](repeating: 0, count: slots) }
        if batchResultCapacity < slots * kk {
            batchResultBuffer?.deallocate()
            batchResultCapacity = slots * kk
            batchResultBuffer = .allocate(capacity: batchResultCapacity)
        }
        for i in 0..<slots { batchResultCounts[i] = 0 }
        guard n > 0, nl > 0, kk > 0 else { return }
        let out = batchResultBuffer!

        guard fastScan else {
            for q in 0..<n {
                searchPerLabel(queries + q * d, labels: labels, k: kk, parameters: parameters)
                for li in 0..<nl {
                    let r = results(forLabelAt: li)
                    (out + (q * nl + li) * kk).update(from: r.baseAddress!, count: r.count)
                    batchResultCounts[q * nl + li] = r.count
                }
            }
            return
        }

        index.lock.withReadLock {
            let tableBytes = FastScan.kernelTableBytes(subquantizers: m)
            let coarseAll = UnsafeMutablePointer<Float>.allocate(capacity: n * nlist)
            let tables = UnsafeMutablePointer<UInt8>.allocate(capacity: n * tableBytes)
            var bias = [Float](repeating: 0, count: n), inv = [Float](repeating: 1, count: n)
            defer { coarseAll.deallocate(); tables.deallocate() }
            index.centroids.withUnsafeBufferPointer { c in
                BLAS.sgemm(.none, .transposed, m: n, n: nlist, k: d, a: UnsafeBufferPointer(start: queries, count: n * d), lda: d,
                           b: c, ldb: d, c: UnsafeMutableBufferPointer(start: coarseAll, count: n * nlist), ldc: nlist)
            }
            for q in 0..<n {
                index.pq.innerProductTable(queries + q * d, into: lut)
                (bias[q], inv[q]) = FastScan.quantize(lut, subquantizers: m, into: lut8)
                FastScan.kernelTable(lut8, subquantizers: m, into: tables + q * tableBytes)
            }

            // Every (phase, list, label index, query) probe, sorted so each run's queries are
            // adjacent.
            precondition(nlist < 1 << 23 && nl < 1 << 20 && n < 1 << 20, "searchPerLabel(batch:): too many lists, labels or queries")
            var work: [UInt64] = []
            work.reserveCapacity(n * nl * max(1, parameters.nprobe))
            let lists = index.lists
            for q in 0..<n {
                for (li, label) in labels.enumerated() where Int(label) < lists.listsByLabel.count {
                    let selected = lists.listsByLabel[Int(label)].withUnsafeBufferPointer {
                        selectProbes(parameters.nprobe, candidates: $0, coarse: coarseAll + q * nlist)
                    }
                    let np = probesWithinMargin(selected, label: label, k: kk, margin: parameters.probeMargin)
                    // Each query's best list first (phase bit 0): its heaps fill with good
                    // entries early, so the later scans push little.
                    for p in 0..<np {
                        work.append((p == 0 ? 0 : 1 << 63) | UInt64(probes[p].id) << 40 | UInt64(li) << 20 | UInt64(q))
                    }
                }
            }
            work.sort()

            ensureHeaps(slots)
            for i in 0..<slots { heaps[i].reset(capacity: kk) }
            var i = 0
            while i < work.count {
                let key = work[i] >> 20
                let l = Int((key >> 20) & 0x7FFFFF), li = Int(key & 0xFFFFF)
                var j = i
                if let r = lists.range(of: labels[li], in: l) {
                    let list = lists.lists[l]
                    while j < work.count && work[j] >> 20 == key {
                        let q = Int(work[j] & 0xFFFFF)
                        scanFastScan(list, range: r, base: coarseAll[q * nlist + l], heap: &heaps[q * nl + li], predicate: nil,
                                     table: tables + q * tableBytes, bias: bias[q], invScale: inv[q])
                        statistics.listsScanned += 1
                        j += 1
                    }
                } else {
                    while j < work.count && work[j] >> 20 == key { j += 1 }
                }
                i = j
            }
            for s in 0..<slots {
                batchResultCounts[s] = heaps[s].sortedResults(into: out + s * kk)
            }
            statistics.queries += n
        }
    }

    /// Query `q`'s results for its `li`-th label of the last `searchPerLabel(batch:)`.
    public func batchResults(query q: Int, labelAt li: Int) -> UnsafeBufferPointer<Neighbor> {
        let (n, nl, kk) = batchShape
        precondition(q >= 0 && q < n && li >= 0 && li < nl, "batchResults: query \(q) label \(li) of \(n) × \(nl)")
        return UnsafeBufferPointer(start: batchResultBuffer! + (q * nl + li) * kk, count: batchResultCounts[q * nl + li])
    }
}
