import CPrefetch
import LinearAlgebra

/// Counters of the work done by a searcher since its creation (or `resetStatistics()`).
public struct SearchStatistics: Sendable, Equatable {
    public var queries = 0
    public var listsScanned = 0
    /// Entries whose codes were scanned (4-bit: whole 32-entry blocks count).
    public var entriesScanned = 0
    /// Bytes of PQ codes read by the scans.
    public var codeBytesScanned = 0
    public init() {}
}

/// A per-thread search context over one `IVFPQIndex`: all scratch memory (coarse scores,
/// lookup tables, heaps, results) is allocated once and reused, so a query allocates nothing.
/// Not thread-safe: make one searcher per thread (`IVFPQIndex.makeSearcher()`).
///
/// Results are returned as views into the searcher's memory, valid until its next search.
public final class IVFPQSearcher {
    public let index: IVFPQIndex
    public internal(set) var statistics = SearchStatistics()

    let d: Int, m: Int, ksub: Int, nlist: Int, fastScan: Bool
    let coarse: UnsafeMutablePointer<Float>
    let lut: UnsafeMutablePointer<Float>
    let lut8: UnsafeMutablePointer<UInt8>
    /// `lut8` laid out for the fast-scan kernel (`FastScan.kernelTable`).
    let kernelTable: UnsafeMutablePointer<UInt8>
    /// 32 bytes the fast-scan kernel may store to (see `FastScan.accumulate`).
    let sink: UnsafeMutableRawPointer
    let sums: UnsafeMutablePointer<UInt16>
    /// A list's block sums for `scanFastScanBounded` (32 per block).
    var blockSums = UnsafeMutablePointer<UInt16>.allocate(capacity: 64 * 32)
    var blockSumCapacity = 64
    let probes: UnsafeMutablePointer<Neighbor>
    /// A label's candidate lists' probe scores (`selectProbes`), nlist floats.
    let probeScores: UnsafeMutablePointer<Float>
    var probeHeap = TopKHeap(capacity: 1)
    var refineHeap = TopKHeap(capacity: 1)
    var heaps: [TopKHeap] = []
    var results: UnsafeMutablePointer<Neighbor>
    var resultCapacity: Int
    var rowPointers = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: 256)
    var rowPointerCapacity = 256
    var labelResultCounts: [Int] = []
    var labelResultStride = 0
    // Results of `searchPerLabel(batch:)`: (queries, labels, k) and per (query, label) counts.
    var batchShape = (0, 0, 0)
    var batchResultCounts: [Int] = []
    var batchResultBuffer: UnsafeMutablePointer<Neighbor>?
    var batchResultCapacity = 0
    // Per-query quantized-table parameters (4-bit).
    var lutBias: Float = 0
    var lutInvScale: Float = 1
    /// With an index ordered along its principal axis: the query's coordinate on the axis and
    /// the standard deviation of the rest of a residual's score for this query.
    var axisQuery: Float = 0
    var axisRestDeviation: Float = 0
    var momentsTimesQuery: [Float] = []
    /// Blocks of a category's first ordered list summed before its heap takes any entry.
    static let orderedLeadBlocks = 4

    init(index: IVFPQIndex) {
        self.index = index
        d = index.dimension
        m = index.configuration.subquantizers
        ksub = 1 << index.configuration.bitsPerCode
        nlist = index.nlist
        fastScan = index.configuration.bitsPerCode == 4
        coarse = .allocate(capacity: nlist)
        lut = .allocate(capacity: m * ksub)
        lut8 = .allocate(capacity: m * 16)
        kernelTable = .allocate(capacity: FastScan.kernelTableBytes(subquantizers: m))
        sink = .allocate(byteCount: 32, alignment: 32)
        sums = .allocate(capacity: 32)
        probes = .allocate(capacity: nlist)
        probeScores = .allocate(capacity: nlist)
        resultCapacity = 1024
        results = .allocate(capacity: resultCapacity)
        heaps = [TopKHeap(capacity: 1)]
    }

    deinit {
        coarse.deallocate(); lut.deallocate(); lut8.deallocate(); kernelTable.deallocate(); sink.deallocate()
        sums.deallocate(); blockSums.deallocate(); probes.deallocate(); probeScores.deallocate(); results.deallocate(); rowPointers.deallocate()
        probeHeap.deallocate(); refineHeap.deallocate(); batchResultBuffer?.deallocate()
        for h in heaps { h.deallocate() }
    }

    public func resetStatistics() { statistics = SearchStatistics() }

    // MARK: Public entry points

    /// The top-k entries for one query (D floats), best first. With `refine`, k × refineFactor
    /// candidates are re-scored exactly and the scores are exact inner products; otherwise the
    /// scores are the index's approximations.
    @discardableResult
    public func search(_ query: UnsafePointer<Float>, k: Int, parameters: SearchParameters = SearchParameters(),
                       filter: SearchFilter = .none, refine: VectorSource? = nil) -> UnsafeBufferPointer<Neighbor> {
        index.lock.withReadLock {
            searchLocked(query, coarseScores: nil, k: k, parameters: parameters, filter: filter, refine: refine)
        }
    }

    /// Convenience: `search` into a fresh array (allocates; not for hot paths).
    public func search(_ query: [Float], k: Int, parameters: SearchParameters = SearchParameters(),
                       filter: SearchFilter = .none, refine: VectorSource? = nil) -> [Neighbor] {
        precondition(query.count == d, "search: query has \(query.count) floats, the index dimension is \(d)")
        return query.withUnsafeBufferPointer { Array(search($0.baseAddress!, k: k, parameters: parameters, filter: filter, refine: refine)) }
    }

    /// Top-`k` for EACH label in `labels`, in one call sharing the coarse scores and the lookup
    /// table. Per label, the `nprobe` best-scoring lists that hold that label are scanned (only
    /// that label's entries). Read each label's results with `results(forLabelAt:)`.
    public func searchPerLabel(_ query: UnsafePointer<Float>, labels: UnsafeBufferPointer<UInt16>, k: Int,
                               parameters: SearchParameters = SearchParameters(), refine: VectorSource? = nil) {
        index.lock.withReadLock {
            let kk = max(0, k)
            let depth = refine != nil ? kk * max(1, parameters.refineFactor) : kk
            prepare(query, coarseScores: nil)
            ensureHeaps(labels.count)
            ensureResults(labels.count * kk + depth)
            labelResultStride = kk
            if labelResultCounts.count < labels.count {
                labelResultCounts.append(contentsOf: repeatElement(0, count: labels.count - labelResultCounts.count))
            }
            for i in 0..<labels.count { labelResultCounts[i] = 0 }
            // Every label scanned first, the kept entries' ids read after all of them: each is a
            // cache miss, and a label's few misses alone overlapped only with each other (the
            // next label's scan is too long for the reorder window to reach them).
            for (li, label) in labels.enumerated() {
                heaps[li].reset(capacity: depth)
                guard depth > 0 else { continue }
                scanLabel(label, parameters: parameters, heap: &heaps[li], predicate: nil, resolveIds: false)
            }
            for li in 0..<labels.count where depth > 0 {
                if fastScan { resolveHandles(&heaps[li]) }
                labelResultCounts[li] = finish(heap: heaps[li], query: query, k: kk, refine: refine,
                                               into: results + li * kk, scratch: results + labels.count * kk)
            }
            statistics.queries += 1
        }
    }

    /// Convenience: per-label results as arrays, in the order of `labels`.
    public func searchPerLabel(_ query: [Float], labels: [UInt16], k: Int,
                               parameters: SearchParameters = SearchParameters(), refine: VectorSource? = nil) -> [[Neighbor]] {
        precondition(query.count == d, "searchPerLabel: query has \(query.count) floats, the index dimension is \(d)")
        query.withUnsafeBufferPointer { q in
            labels.withUnsafeBufferPointer { searchPerLabel(q.baseAddress!, labels: $0, k: k, parameters: parameters, refine: refine) }
        }
        return labels.indices.map { Array(results(forLabelAt: $0)) }
    }

    /// Results of the last `searchPerLabel` for its `i`-th label (valid until the next search).
    public func results(forLabelAt i: Int) -> UnsafeBufferPointer<Neighbor> {
        UnsafeBufferPointer(start: results + i * labelResultStride, count: labelResultCounts[i])
    }

    // MARK: Pipeline

    func searchLocked(_ query: UnsafePointer<Float>, coarseScores: UnsafePointer<Float>?, k: Int,
                      parameters: SearchParameters, filter: SearchFilter, refine: VectorSource?) -> UnsafeBufferPointer<Neighbor> {
        let kk = max(0, k)
        let depth = refine != nil ? kk * max(1, parameters.refineFactor) : kk
        ensureResults(kk + depth)
        statistics.queries += 1
        guard depth > 0 else { return UnsafeBufferPointer(start: results, count: 0) }
        prepare(query, coarseScores: coarseScores)
        heaps[0].reset(capacity: depth)
        switch filter {
        case .none:
            scanAll(nprobe: parameters.nprobe, heap: &heaps[0], predicate: nil)
        case .predicate(let p):
            scanAll(nprobe: parameters.nprobe, heap: &heaps[0], predicate: p)
        case .label(let label):
            scanLabel(label, parameters: parameters, heap: &heaps[0], predicate: nil)
        }
        let n = finish(heap: heaps[0], query: query, k: kk, refine: refine, into: results, scratch: results + kk)
        return UnsafeBufferPointer(start: results, count: n)
    }

    /// Coarse scores <q, c_l> and the per-query lookup table.
    func prepare(_ query: UnsafePointer<Float>, coarseScores: UnsafePointer<Float>?) {
        if let coarseScores {
            coarse.update(from: coarseScores, count: nlist)
        } else {
            index.centroids.withUnsafeBufferPointer { c in
                BLAS.sgemv(.none, rows: nlist, cols: d, a: c, lda: d,
                           x: UnsafeBufferPointer(start: query, count: d),
                           y: UnsafeMutableBufferPointer(start: coarse, count: nlist))
            }
        }
        index.pq.innerProductTable(query, into: lut)
        if !index.axis.isEmpty {
            // qᵀΣq - (q·v)²·λ: the variance of <q, r> off the axis (v is an eigenvector of Σ).
            if momentsTimesQuery.count != d { momentsTimesQuery = [Float](repeating: 0, count: d) }
            index.residualMoments.withUnsafeBufferPointer { mp in
                momentsTimesQuery.withUnsafeMutableBufferPointer { y in
                    BLAS.sgemv(.none, rows: d, cols: d, a: mp, lda: d, x: UnsafeBufferPointer(start: query, count: d), y: y)
                }
            }
            let qv = index.axis.withUnsafeBufferPointer { VectorMath.dot(query, $0.baseAddress!, count: d) }
            let qsq = momentsTimesQuery.withUnsafeBufferPointer { VectorMath.dot(query, $0.baseAddress!, count: d) }
            axisQuery = qv
            axisRestDeviation = max(0, qsq - qv * qv * index.axisVariance).squareRoot()
        }
        if fastScan {
            (lutBias, lutInvScale) = FastScan.quantize(lut, subquantizers: m, into: lut8)
            FastScan.kernelTable(lut8, subquantizers: m, into: kernelTable)
        }
    }

    /// The `nprobe` lists (among `candidates`, or all) nearest to the query, best first, in
    /// `probes`; returns how many.
    func selectProbes(_ nprobe: Int, candidates: UnsafeBufferPointer<Int32>?) -> Int {
        selectProbes(nprobe, candidates: candidates, coarse: UnsafePointer(coarse))
    }

    /// As above with the coarse scores of another query (batched searches).
    func selectProbes(_ nprobe: Int, candidates: UnsafeBufferPointer<Int32>?, coarse: UnsafePointer<Float>) -> Int {
        let want = max(1, min(nprobe, nlist))
        probeHeap.reset(capacity: want)
        index.centroidHalfNorms.withUnsafeBufferPointer { hb in
            let h = hb.baseAddress!
            if let candidates {
                let n = candidates.count
                guard want <= 8 && n >= 4 * want && n >= 16 else {
                    for l32 in candidates {
                        let l = Int(l32)
                        probeHeap.push(coarse[l] - h[l], Int64(l))
                    }
                    return
                }
                // A label's lists come in no useful order, so pushing each took ~k·ln(n/k)
                // mispredicted sorted insertions. The scores first, with eight lanes' maxima:
                // the want-th largest maximum is a score at least `want` lists reach (each lane's
                // maximum is another list's), so only the lists at or above it are pushed, in the
                // same order: the same probes (among lists tied at the last probe's score the heap
                // may keep another one: which tie it keeps depends on when it filled).
                let sc = probeScores
                var mx = SIMD8<Float>(repeating: -.infinity)
                var i = 0
                while i + 8 <= n {
                    var v = SIMD8<Float>()
                    for j in 0..<8 { let l = Int(candidates[i + j]); v[j] = coarse[l] - h[l] }
                    UnsafeMutableRawPointer(sc + i).storeBytes(of: v, as: SIMD8<Float>.self)
                    mx = lanewiseMax(mx, v)
                    i += 8
                }
                while i < n { let l = Int(candidates[i]); sc[i] = coarse[l] - h[l]; i += 1 }
                // The want-th largest of the eight maxima.
                let bar = kthLargest(mx, want)
                // The few at or above it, eight compares at a time (a scalar compare and branch
                // per list was a third of this function).
                let floor = bar.nextDown
                var at = ThresholdScan.firstAbove(sc, from: 0, to: n, threshold: floor)
                while at < n {
                    probeHeap.push(sc[at], Int64(candidates[at]))
                    at = ThresholdScan.firstAbove(sc, from: at + 1, to: n, threshold: floor)
                }
                return
            }
            // All lists: 8 at a time, touching the heap only when a lane beats its threshold.
            var l = 0
            while l + 8 <= nlist {
                let v = UnsafeRawPointer(coarse + l).loadUnaligned(as: SIMD8<Float>.self)
                    - UnsafeRawPointer(h + l).loadUnaligned(as: SIMD8<Float>.self)
                if any(v .> SIMD8<Float>(repeating: probeHeap.threshold)) {
                    for j in 0..<8 { probeHeap.push(v[j], Int64(l + j)) }
                }
                l += 8
            }
            while l < nlist { probeHeap.push(coarse[l] - h[l], Int64(l)); l += 1 }
        }
        return probeHeap.sortedResults(into: probes)
    }

    func scanAll(nprobe: Int, heap: inout TopKHeap, predicate: ((Int64) -> Bool)?) {
        let np = selectProbes(nprobe, candidates: nil)
        for p in 0..<np {
            let l = Int(probes[p].id)
            let list = index.lists.lists[l]
            guard list.count > 0 else { continue }
            scan(list, range: 0..<list.count, base: coarse[l], heap: &heap, predicate: predicate)
        }
    }

    /// With `resolveIds` false (4-bit codes, no predicate) the heap keeps (list, position)
    /// handles, their ids prefetched: the caller reads them with `resolveHandles`.
    func scanLabel(_ label: UInt16, parameters: SearchParameters, heap: inout TopKHeap, predicate: ((Int64) -> Bool)?,
                   resolveIds: Bool = true) {
        let lists = index.lists
        guard Int(label) < lists.listsByLabel.count else { return }
        let selected = lists.listsByLabel[Int(label)].withUnsafeBufferPointer { selectProbes(parameters.nprobe, candidates: $0) }
        let np = probesWithinMargin(selected, label: label, k: heap.capacity, margin: parameters.probeMargin)
        // Without a predicate the 4-bit scans push (list, position) handles and the ids of the
        // k kept entries are read at the end: reading each pushed entry's id from the list's id
        // array was a cache miss per push (8 % of the scan at 1M items).
        let deferIds = fastScan && predicate == nil
        let ordered = deferIds && parameters.axisSlack < .infinity && !index.axis.isEmpty
        let slack = parameters.axisSlack * axisRestDeviation
        for p in 0..<np {
            let l = Int(probes[p].id)
            guard let r = lists.range(of: label, in: l) else { continue }
            if ordered {
                statistics.listsScanned += 1
                scanFastScanOrdered(lists.lists[l], list: l, range: r, base: coarse[l], slack: slack, heap: &heap)
            } else {
                scan(lists.lists[l], range: r, base: coarse[l], heap: &heap, predicate: predicate,
                     handles: deferIds ? Int64(l) << 32 : nil)
            }
        }
        if deferIds {
            if resolveIds {
                resolveHandles(&heap)
            } else {
                for i in 0..<heap.count { feedrank_prefetch(Self.id(ofHandle: heap.ids[i], in: lists)) }
            }
        }
    }

    /// The ids of a heap's (list, position) handles (`scanLabel`'s deferred ids).
    func resolveHandles(_ heap: inout TopKHeap) {
        let lists = index.lists
        for i in 0..<heap.count { heap.ids[i] = Self.id(ofHandle: heap.ids[i], in: lists).pointee }
    }

    /// Where the id of a (list << 32 | position) handle is stored.
    @inline(__always)
    static func id(ofHandle h: Int64, in lists: InvertedLists) -> UnsafePointer<Int64> {
        lists.lists[Int(h >> 32)].ids! + Int(h & 0xFFFF_FFFF)
    }

    /// How many of the `np` probes just selected for `label` (best first, in `probes`) a search
    /// scans under `SearchParameters.probeMargin`: the best list, then each next one whose probe
    /// score is within `margin` of the best list's, and any list while those before it hold
    /// fewer than `k` of the label's entries (so the search still finds k when the selected lists
    /// have them). Depends only on the probes and the lists' sizes, not on what a scan found, so
    /// the batched search makes the same choice.
    func probesWithinMargin(_ np: Int, label: UInt16, k: Int, margin: Float) -> Int {
        guard np > 1, margin < .infinity else { return np }
        let lists = index.lists
        let best = probes[0].score
        var held = 0
        for p in 0..<np {
            if p > 0 && held >= k && probes[p].score < best - margin { return p }
            held += lists.range(of: label, in: Int(probes[p].id))?.count ?? 0
        }
        return np
    }

    /// `handles` (4-bit codes, no predicate): see `scanFastScan`.
    @inline(__always)
    func scan(_ list: InvertedLists.List, range: Range<Int>, base: Float, heap: inout TopKHeap,
              predicate: ((Int64) -> Bool)?, handles: Int64? = nil) {
        statistics.listsScanned += 1
        if fastScan {
            scanFastScan(list, range: range, base: base, heap: &heap, predicate: predicate,
                         table: kernelTable, bias: lutBias, invScale: lutInvScale, handles: handles)
        } else {
            scanBytes(list, range: range, base: base, heap: &heap, predicate: predicate)
        }
    }

    /// 8-bit codes: score = base + Σ_m LUT[m][code_m], four partial sums for ILP.
    func scanBytes(_ list: InvertedLists.List, range: Range<Int>, base: Float, heap: inout TopKHeap,
                   predicate: ((Int64) -> Bool)?) {
        let codes = list.codes!, ids = list.ids!
        let mm = m, table = lut
        var threshold = heap.threshold
        statistics.entriesScanned += range.count
        statistics.codeBytesScanned += range.count * mm
        for i in range {
            let c = codes + i * mm
            var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
            var j = 0
            while j + 4 <= mm {
                s0 += table[j &* 256 &+ Int(c[j])]
                s1 += table[(j &+ 1) &* 256 &+ Int(c[j &+ 1])]
                s2 += table[(j &+ 2) &* 256 &+ Int(c[j &+ 2])]
                s3 += table[(j &+ 3) &* 256 &+ Int(c[j &+ 3])]
                j &+= 4
            }
            while j < mm { s0 += table[j &* 256 &+ Int(c[j])]; j &+= 1 }
            let score = base + ((s0 + s1) + (s2 + s3))
            if score > threshold {
                if let predicate, !predicate(ids[i]) { continue }
                heap.push(score, ids[i])
                threshold = heap.threshold
            }
        }
    }

    /// 4-bit fast-scan: whole 32-entry blocks through the SIMD kernel with a query's quantized
    /// table (this searcher's, or another query's in batched searches); entries outside `range`
    /// (label boundaries inside a block, padding) are ignored. With `handles`, entries are
    /// pushed as `handles | position` instead of their ids (no predicate then; the caller reads
    /// the kept ones' ids).
    func scanFastScan(_ list: InvertedLists.List, range: Range<Int>, base: Float, heap: inout TopKHeap,
                      predicate: ((Int64) -> Bool)?, table kernelTable: UnsafePointer<UInt8>, bias lutBias: Float,
                      invScale lutInvScale: Float, handles: Int64? = nil) {
        precondition(handles == nil || predicate == nil, "scanFastScan: handles need ids for a predicate")
        let codes = list.codes!, ids = list.ids!
        let mm = m, blockBytes = 16 * m
        let firstBlock = range.lowerBound / 32, endBlock = (range.upperBound + 31) / 32
        let listBase = base + lutBias, inv = lutInvScale, scale = 1 / lutInvScale
        statistics.entriesScanned += (endBlock - firstBlock) * 32
        statistics.codeBytesScanned += (endBlock - firstBlock) * blockBytes
        // An empty heap (a label's best list) would take every entry until full and then most
        // of the good ones as the threshold creeps up: ~k·(1 + ln(n/k)) sorted insertions. Its
        // blocks are summed first instead, and the k-th largest of the 32 lane maxima, a sum
        // that at least k entries of this list reach, is the bar from the start.
        if heap.count == 0, predicate == nil, heap.capacity > 0, heap.capacity <= 32, endBlock - firstBlock >= 2 {
            scanFastScanBounded(codes: codes, ids: ids, range: range, blocks: firstBlock..<endBlock, listBase: listBase,
                                inv: inv, heap: &heap, table: kernelTable, handles: handles)
            return
        }
        var threshold = heap.threshold
        for b in firstBlock..<endBlock {
            // The 16-bit sum an entry needs to reach the heap.
            let need = (threshold - listBase) * scale
            if need > 65535 { return }      // nothing left in this list can enter
            let needQ = need <= 0 ? UInt16(0) : UInt16(need)
            let (even, odd) = FastScan.accumulate(kernelTable, block: codes + b * blockBytes, subquantizers: mm, sink: sink)
            let bits = FastScan.lanes(even, odd, atLeast: needQ)
            guard bits != 0 else { continue }
            let raw = UnsafeMutableRawPointer(sums)
            raw.storeBytes(of: even, as: SIMD16<UInt16>.self)
            raw.storeBytes(of: odd, toByteOffset: 32, as: SIMD16<UInt16>.self)
            offerLanes(bits, sums: sums, blockStart: b * 32, range: range, listBase: listBase, inv: inv, ids: ids,
                       predicate: predicate, heap: &heap, threshold: &threshold, handles: handles)
        }
    }

    /// `scanFastScan` over a list ordered along the index's axis, with (list, position) handles:
    /// blocks from the end that faces the query (the largest axis coordinates first when the
    /// query's is positive), stopping at the first block whose bound — `base` + the query's
    /// axis coordinate × the block's extreme coordinate within `range` + `slack` — does not
    /// beat the heap's threshold.
    func scanFastScanOrdered(_ list: InvertedLists.List, list l: Int, range: Range<Int>, base: Float, slack: Float,
                             heap: inout TopKHeap) {
        guard !range.isEmpty else { return }
        let codes = list.codes!, ids = list.ids!
        let mm = m, blockBytes = 16 * m
        let firstBlock = range.lowerBound / 32, endBlock = (range.upperBound + 31) / 32
        let listBase = base + lutBias, inv = lutInvScale, scale = 1 / lutInvScale
        let handles = Int64(l) << 32
        let qa = axisQuery
        index.axisCoordinates.withUnsafeBufferPointer { cp in
            let t = cp.baseAddress! + index.axisOffsets[l]
            let descending = qa >= 0
            var b = descending ? endBlock - 1 : firstBlock
            // A category's first list: its first few blocks from the facing end summed at once,
            // only the entries at or above the k-th lane maximum offered (`scanFastScanBounded`),
            // so the heap starts full of good entries instead of taking most of the first blocks.
            let lead = min(endBlock - firstBlock, Self.orderedLeadBlocks)
            if heap.count == 0, heap.capacity > 0, heap.capacity <= 32, lead >= 2 {
                let blocks = descending ? (endBlock - lead)..<endBlock : firstBlock..<(firstBlock + lead)
                statistics.entriesScanned += 32 * lead
                statistics.codeBytesScanned += blockBytes * lead
                scanFastScanBounded(codes: codes, ids: ids, range: range, blocks: blocks, listBase: listBase, inv: inv,
                                    heap: &heap, table: kernelTable, handles: handles)
                b = descending ? endBlock - lead - 1 : firstBlock + lead
            }
            var threshold = heap.threshold
            while b >= firstBlock && b < endBlock {
                // The block's entry with the largest q_a · t: its last (ascending order) when
                // q_a >= 0, its first otherwise, within `range`.
                let edge = descending ? t[min(range.upperBound, b * 32 + 32) - 1] : t[max(range.lowerBound, b * 32)]
                if base + qa * edge + slack <= threshold { break }
                let need = (threshold - listBase) * scale
                if need > 65535 { break }       // nothing left in this list can enter
                statistics.entriesScanned += 32
                statistics.codeBytesScanned += blockBytes
                let needQ = need <= 0 ? UInt16(0) : UInt16(need)
                let (even, odd) = FastScan.accumulate(kernelTable, block: codes + b * blockBytes, subquantizers: mm, sink: sink)
                let bits = FastScan.lanes(even, odd, atLeast: needQ)
                if bits != 0 {
                    let raw = UnsafeMutableRawPointer(sums)
                    raw.storeBytes(of: even, as: SIMD16<UInt16>.self)
                    raw.storeBytes(of: odd, toByteOffset: 32, as: SIMD16<UInt16>.self)
                    offerLanes(bits, sums: sums, blockStart: b * 32, range: range, listBase: listBase, inv: inv, ids: ids,
                               predicate: nil, heap: &heap, threshold: &threshold, handles: handles)
                }
                b += descending ? -1 : 1
            }
        }
    }

    /// Offers to `heap` the entries of one block whose lanes are set in `bits` (`FastScan.lanes`)
    /// and whose position is in `range`: score = listBase + sums[lane] · inv, pushed when it
    /// beats `threshold` (kept equal to the heap's) and `predicate` accepts its id.
    @inline(__always)
    func offerLanes(_ bits: UInt64, sums: UnsafePointer<UInt16>, blockStart: Int, range: Range<Int>, listBase: Float,
                    inv: Float, ids: UnsafePointer<Int64>, predicate: ((Int64) -> Bool)?, heap: inout TopKHeap,
                    threshold: inout Float, handles: Int64? = nil) {
        var bits = bits
        while bits != 0 {
            let bit = bits.trailingZeroBitCount
            bits &= ~(UInt64(3) << UInt64(bit & ~1))
            let lane = bit >> 1
            let pos = blockStart + FastScan.entry(ofLane: lane)
            guard range.contains(pos) else { continue }
            let score = listBase + Float(sums[lane]) * inv
            if score > threshold {
                if let handles {
                    heap.push(score, handles | Int64(pos))
                } else {
                    if let predicate, !predicate(ids[pos]) { continue }
                    heap.push(score, ids[pos])
                }
                threshold = heap.threshold
            }
        }
    }

    /// `scanFastScan` into an empty heap: every block's sums into `blockSums` with the lane-wise
    /// maxima over the in-range entries, then only the entries at or above the k-th largest
    /// maximum are offered to the heap (the same top-k: at least k entries reach that sum, so
    /// nothing below it can be kept).
    func scanFastScanBounded(codes: UnsafePointer<UInt8>, ids: UnsafePointer<Int64>, range: Range<Int>,
                             blocks: Range<Int>, listBase: Float, inv: Float, heap: inout TopKHeap,
                             table kernelTable: UnsafePointer<UInt8>, handles: Int64? = nil) {
        let mm = m, blockBytes = 16 * m
        ensureBlockSums(blocks.count)
        let buf = UnsafeMutableRawPointer(blockSums)
        var maxEven = SIMD16<UInt16>(), maxOdd = SIMD16<UInt16>()
        for b in blocks {
            var (even, odd) = FastScan.accumulate(kernelTable, block: codes + b * blockBytes, subquantizers: mm, sink: sink)
            let at = (b - blocks.lowerBound) * 64
            buf.storeBytes(of: even, toByteOffset: at, as: SIMD16<UInt16>.self)
            buf.storeBytes(of: odd, toByteOffset: at + 32, as: SIMD16<UInt16>.self)
            if b * 32 < range.lowerBound || b * 32 + 32 > range.upperBound {
                // A block the range only partly covers: its other lanes do not count.
                (even, odd) = FastScan.zeroingLanes(even, odd, outside: (range.lowerBound - b * 32)..<(range.upperBound - b * 32))
            }
            maxEven = lanewiseMax(maxEven, even)
            maxOdd = lanewiseMax(maxOdd, odd)
        }
        // The largest lane maximum v that at least k lane maxima reach (0 -- no bar -- when fewer
        // than k lanes saw an entry; a real entry summing to 0 only makes the bar lower).
        let bar = kthLargest(maxEven, maxOdd, heap.capacity)
        let scale = 1 / inv
        var threshold = heap.threshold
        for b in blocks {
            let need = (threshold - listBase) * scale
            if need > 65535 { return }
            let needQ = max(bar, need <= 0 ? UInt16(0) : UInt16(need))
            let at = (b - blocks.lowerBound) * 64
            let even = buf.load(fromByteOffset: at, as: SIMD16<UInt16>.self)
            let odd = buf.load(fromByteOffset: at + 32, as: SIMD16<UInt16>.self)
            let bits = FastScan.lanes(even, odd, atLeast: needQ)
            guard bits != 0 else { continue }
            offerLanes(bits, sums: blockSums + (b - blocks.lowerBound) * 32, blockStart: b * 32, range: range,
                       listBase: listBase, inv: inv, ids: ids, predicate: nil, heap: &heap, threshold: &threshold,
                       handles: handles)
        }
    }

    func ensureBlockSums(_ blocks: Int) {
        guard blocks > blockSumCapacity else { return }
        blockSums.deallocate()
        blockSumCapacity = max(blocks, 2 * blockSumCapacity)
        blockSums = .allocate(capacity: blockSumCapacity * 32)
    }

    /// Writes the final top-k into `out`: the heap's entries re-scored exactly when a vector
    /// source is given, else as they are. Returns the count.
    func finish(heap: TopKHeap, query: UnsafePointer<Float>, k: Int, refine: VectorSource?,
                into out: UnsafeMutablePointer<Neighbor>, scratch: UnsafeMutablePointer<Neighbor>) -> Int {
        guard let refine else {
            let n = heap.sortedResults(into: scratch)
            let kept = min(n, k)
            out.update(from: scratch, count: kept)
            return kept
        }
        refineHeap.reset(capacity: k)
        // Candidates' rows are scattered in memory: first touch every cache line of every row
        // (independent loads the CPU overlaps), then compute the exact scores.
        let n = heap.count
        ensureRowPointers(n)
        var touch: Float = 0
        for i in 0..<n {
            let v = refine.vector(heap.ids[i])
            rowPointers[i] = v
            guard let v else { continue }
            var off = 0
            while off < d { touch += v[off]; off += 16 }
        }
        sink.storeBytes(of: touch, as: Float.self)
        for i in 0..<n {
            guard let v = rowPointers[i] else { continue }
            refineHeap.push(VectorMath.dot(query, v, count: d), heap.ids[i])
        }
        return refineHeap.sortedResults(into: out)
    }

    func ensureResults(_ n: Int) {
        guard n > resultCapacity else { return }
        results.deallocate()
        resultCapacity = max(n, 2 * resultCapacity)
        results = .allocate(capacity: resultCapacity)
    }

    func ensureRowPointers(_ n: Int) {
        guard n > rowPointerCapacity else { return }
        rowPointers.deallocate()
        rowPointerCapacity = max(n, 2 * rowPointerCapacity)
        rowPointers = .allocate(capacity: rowPointerCapacity)
    }

    func ensureHeaps(_ n: Int) {
        while heaps.count < n { heaps.append(TopKHeap(capacity: 1)) }
    }
}
