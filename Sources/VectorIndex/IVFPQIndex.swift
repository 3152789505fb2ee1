import LinearAlgebra

/// An inverted-file index with residual product quantization for inner-product search
/// (FAISS's IndexIVFPQ and, with 4-bit codes, IndexIVFPQFastScan), with labels for filtered
/// search, incremental add/remove by id, and a single memory-mappable file.
///
/// Decomposition (as in FAISS): a coarse quantizer (k-means centroids, L2), a product quantizer
/// trained on residuals x - c(x), inverted lists of (id, label, code) sorted by label, and a
/// scanner per query (`IVFPQSearcher`). For inner product with residual PQ the score of an
/// entry of list l is <q, c_l> + Σ_m LUT_m[code_m], where the table LUT is the same for every
/// list, so a query builds it once.
///
/// Concurrency: searches (any number of searchers, on any threads) run in parallel;
/// `train`, `add`, `remove` and `save` take the index alone (readers-writer lock).
public final class IVFPQIndex: @unchecked Sendable {
    public let configuration: IVFPQConfiguration
    public var dimension: Int { configuration.dimension }
    public var nlist: Int { configuration.nlist }

    /// nlist × D coarse centroids (row-major) and their squared norms / 2.
    private(set) var centroids: [Float]
    private(set) var centroidHalfNorms: [Float]
    private(set) var pq: ProductQuantizer
    private(set) var lists: InvertedLists
    /// Set by `orderAlongPrincipalAxis` (empty otherwise; any add or remove drops it): the
    /// residuals' leading principal axis (D floats), their second moments (D × D) and the
    /// variance along the axis, and every entry's residual coordinate on the axis, flat in list
    /// order (list l's from `axisOffsets[l]`), ascending within each label run.
    private(set) var axis: [Float] = []
    private(set) var residualMoments: [Float] = []
    private(set) var axisVariance: Float = 0
    private(set) var axisCoordinates: [Float] = []
    private(set) var axisOffsets: [Int] = []
    /// Whether the lists are ordered along `axis` (`orderAlongPrincipalAxis`).
    public var isOrderedAlongAxis: Bool { lock.withReadLock { !axis.isEmpty } }
    public private(set) var isTrained: Bool
    let lock = ReadWriteLock()

    public init(configuration: IVFPQConfiguration) throws(VectorIndexError) {
        try configuration.validate()
        self.configuration = configuration
        self.centroids = [Float](repeating: 0, count: configuration.nlist * configuration.dimension)
        self.centroidHalfNorms = [Float](repeating: 0, count: configuration.nlist)
        self.pq = try ProductQuantizer(dimension: configuration.dimension, subquantizers: configuration.subquantizers,
                                       bits: configuration.bitsPerCode)
        self.lists = InvertedLists(nlist: configuration.nlist, layout: configuration.layout)
        self.isTrained = false
    }

    /// Rebuilt from a file (see `IVFPQIndex+Persistence.swift`).
    init(configuration: IVFPQConfiguration, centroids: [Float], pq: ProductQuantizer, lists: InvertedLists,
         axis: [Float] = [], residualMoments: [Float] = []) {
        self.configuration = configuration
        self.centroids = centroids
        self.centroidHalfNorms = Self.halfNorms(centroids, nlist: configuration.nlist, dimension: configuration.dimension)
        self.pq = pq
        self.lists = lists
        self.isTrained = true
        if !axis.isEmpty { setAxis(axis, moments: residualMoments) }
    }

    // MARK: Order along the residuals' principal axis

    /// Orders every list's entries, within each label run, by their residual's coordinate on the
    /// residuals' leading principal axis (learned from a sample of the decoded residuals). A
    /// search can then scan a list from the end that faces the query and stop at the first
    /// block that cannot reach its heap (`SearchParameters.axisSlack`): the rest of the
    /// residual is bounded statistically by the moments kept here. Any later add or remove
    /// drops the order (the lists stay valid, searches scan them whole).
    public func orderAlongPrincipalAxis(sample limit: Int = 65_536) {
        lock.withWriteLock {
            let total = lists.totalCount, d = dimension, m = pq.subquantizers
            guard isTrained, total > 0 else { return }
            let step = max(1, (total + limit - 1) / limit)
            var residuals: [Float] = []
            residuals.reserveCapacity((total / step + 1) * d)
            var code = [UInt8](repeating: 0, count: m), r = [Float](repeating: 0, count: d)
            var seen = 0
            for l in 0..<nlist {
                let list = lists.lists[l]
                for i in 0..<list.count {
                    defer { seen += 1 }
                    guard seen % step == 0 else { continue }
                    code.withUnsafeMutableBufferPointer { lists.layout.unpack(list.codes!, entry: i, into: $0.baseAddress!) }
                    code.withUnsafeBufferPointer { c in r.withUnsafeMutableBufferPointer { pq.decode(c.baseAddress!, into: $0.baseAddress!) } }
                    residuals.append(contentsOf: r)
                }
            }
            let n = residuals.count / d
            var moments = [Float](repeating: 0, count: d * d)
            residuals.withUnsafeBufferPointer { rp in
                moments.withUnsafeMutableBufferPointer { mp in
                    BLAS.sgemm(.transposed, .none, m: d, n: d, k: n, alpha: 1 / Float(n), a: rp, lda: d, b: rp, ldb: d, c: mp, ldc: d)
                }
            }
            let v = Array(BLAS.symmetricEigen(moments, n: d).vectors.prefix(d))
            let table = coordinateTable(v)
            for l in 0..<nlist where lists.lists[l].count > 1 {
                let (ids, labels, codes) = lists.materialize(l)
                let t = codes.withUnsafeBufferPointer { c in
                    (0..<ids.count).map { i in coordinate(ofCode: c.baseAddress! + i * m, table: table) }
                }
                let order = (0..<ids.count).sorted { (a: Int, b: Int) -> Bool in
                    if labels[a] != labels[b] { return labels[a] < labels[b] }
                    if t[a] != t[b] { return t[a] < t[b] }
                    return a < b
                }
                var oc = [UInt8](repeating: 0, count: codes.count)
                for (j, i) in order.enumerated() { for k in 0..<m { oc[j * m + k] = codes[i * m + k] } }
                lists.replace(l, ids: order.map { ids[$0] }, labels: order.map { labels[$0] }, codes: oc)
            }
            lists.rebuildLabelIndex()
            setAxis(v, moments: moments)
        }
    }

    /// table[m·ksub + c]: centroid c of codebook m dotted with the axis' sub-vector m.
    private func coordinateTable(_ v: [Float]) -> [Float] {
        let ks = pq.ksub, ds = pq.dsub
        var table = [Float](repeating: 0, count: pq.subquantizers * ks)
        for m in 0..<pq.subquantizers {
            for c in 0..<ks {
                var s: Float = 0
                for t in 0..<ds { s += pq.codebooks[(m * ks + c) * ds + t] * v[m * ds + t] }
                table[m * ks + c] = s
            }
        }
        return table
    }

    /// An entry's coordinate on the axis from its M unpacked codes (`coordinateTable`).
    @inline(__always)
    private func coordinate(ofCode code: UnsafePointer<UInt8>, table: [Float]) -> Float {
        let ks = pq.ksub
        var s: Float = 0
        for k in 0..<pq.subquantizers { s += table[k * ks + Int(code[k])] }
        return s
    }

    /// Keeps the axis and computes every entry's coordinate (the lists must be ordered along it).
    private func setAxis(_ v: [Float], moments: [Float]) {
        let d = dimension, m = pq.subquantizers
        precondition(v.count == d && moments.count == d * d, "IVFPQIndex: axis of \(v.count) floats, moments of \(moments.count)")
        axis = v
        residualMoments = moments
        var variance: Float = 0
        for i in 0..<d { for j in 0..<d { variance += v[i] * moments[i * d + j] * v[j] } }
        axisVariance = variance
        let table = coordinateTable(v)
        var offsets = [Int](repeating: 0, count: nlist + 1)
        for l in 0..<nlist { offsets[l + 1] = offsets[l] + lists.lists[l].count }
        var coords = [Float](repeating: 0, count: offsets[nlist])
        var code = [UInt8](repeating: 0, count: m)
        for l in 0..<nlist {
            let list = lists.lists[l]
            for i in 0..<list.count {
                coords[offsets[l] + i] = code.withUnsafeMutableBufferPointer {
                    lists.layout.unpack(list.codes!, entry: i, into: $0.baseAddress!)
                    return coordinate(ofCode: $0.baseAddress!, table: table)
                }
            }
        }
        axisCoordinates = coords
        axisOffsets = offsets
    }

    /// After a change to the lists: they are no longer in axis order.
    private func dropAxisOrder() {
        axis = []; residualMoments = []; axisVariance = 0; axisCoordinates = []; axisOffsets = []
    }

    /// Number of indexed entries.
    public var count: Int { lock.withReadLock { lists.totalCount } }

    /// Bytes of PQ codes held by the inverted lists (ids and labels not included).
    public var codeBytes: Int { lock.withReadLock { lists.codeBytes } }

    /// Sizes of the inverted lists (for balance diagnostics).
    public var listSizes: [Int] { lock.withReadLock { lists.lists.map(\.count) } }

    /// The labels present in the index, ascending.
    public var labels: [UInt16] {
        lock.withWriteLock {
            lists.rebuildLabelIndex()
            return lists.listsByLabel.indices.filter { !lists.listsByLabel[$0].isEmpty }.map { UInt16($0) }
        }
    }

    static func halfNorms(_ c: [Float], nlist: Int, dimension d: Int) -> [Float] {
        c.withUnsafeBufferPointer { p in
            (0..<nlist).map { 0.5 * VectorMath.dot(p.baseAddress! + $0 * d, p.baseAddress! + $0 * d, count: d) }
        }
    }

    // MARK: Training

    /// Learns the coarse centroids and the PQ codebooks from `count` vectors (row-major
    /// count × D). Uses a seeded sample of at most nlist × maxTrainingPointsPerList vectors.
    /// Training an index that already holds entries is refused (their codes would go stale).
    public func train(_ vectors: UnsafeBufferPointer<Float>, count n: Int,
                      progress: ((IndexProgress) -> Void)? = nil) throws(VectorIndexError) {
        let d = dimension, cfg = configuration
        guard vectors.count >= n * d else { throw .invalid("train: \(vectors.count) floats cannot hold \(n) vectors of dimension \(d)") }
        guard n >= cfg.nlist else { throw .invalid("train: \(n) vectors for nlist \(cfg.nlist); need at least nlist") }
        guard n >= pq.ksub else { throw .invalid("train: \(n) vectors for \(pq.ksub) PQ centroids per codebook") }
        try lock.withWriteLock { () throws(VectorIndexError) in
            guard lists.totalCount == 0 else { throw .invalid("train: the index already holds \(lists.totalCount) entries") }
            var rng = SplitMix64(seed: cfg.seed)
            let sampleCount = min(n, cfg.nlist * cfg.maxTrainingPointsPerList)
            let rows = rng.sample(sampleCount, from: n)
            var sample = [Float](repeating: 0, count: sampleCount * d)
            for (j, i) in rows.enumerated() { for t in 0..<d { sample[j * d + t] = vectors[i * d + t] } }

            let km = KMeans(k: cfg.nlist, iterations: cfg.coarseIterations, seed: cfg.seed &+ 1, initialization: .random)
            let coarse = try sample.withUnsafeBufferPointer { s throws(VectorIndexError) in
                try km.train(s, count: sampleCount, dimension: d) { it, total in
                    progress?(IndexProgress(phase: "coarse k-means", done: it, total: total))
                }
            }
            // Residuals of (a sample of) the training points for the PQ codebooks.
            let pqCount = min(sampleCount, 256 * pq.ksub)
            var assignment = [Int32](), dist = [Float]()
            var residuals = [Float](repeating: 0, count: pqCount * d)
            sample.withUnsafeBufferPointer { s in
                KMeans.assign(UnsafeBufferPointer(rebasing: s[0..<(pqCount * d)]), count: pqCount, dimension: d,
                              centroids: coarse.centroids, k: cfg.nlist, into: &assignment, distances: &dist)
            }
            for i in 0..<pqCount {
                let c = Int(assignment[i])
                for t in 0..<d { residuals[i * d + t] = sample[i * d + t] - coarse.centroids[c * d + t] }
            }
            var newPQ = pq
            try residuals.withUnsafeBufferPointer { r throws(VectorIndexError) in
                try newPQ.train(r, count: pqCount, iterations: cfg.pqIterations, seed: cfg.seed &+ 2) { m, total in
                    progress?(IndexProgress(phase: "PQ codebooks", done: m, total: total))
                }
            }
            centroids = coarse.centroids
            centroidHalfNorms = Self.halfNorms(centroids, nlist: cfg.nlist, dimension: d)
            pq = newPQ
            isTrained = true
        }
    }

    // MARK: Adding and removing

    /// Adds `ids.count` vectors (row-major) with the caller's ids and optional labels (default 0).
    /// Ids are not checked for uniqueness; adding an id twice stores it twice.
    public func add(_ vectors: UnsafeBufferPointer<Float>, ids: [Int64], labels: [UInt16]? = nil,
                    progress: ((IndexProgress) -> Void)? = nil) throws(VectorIndexError) {
        let n = ids.count, d = dimension, m = pq.subquantizers
        guard vectors.count >= n * d else { throw .invalid("add: \(vectors.count) floats cannot hold \(n) vectors of dimension \(d)") }
        if let labels, labels.count != n { throw .invalid("add: \(labels.count) labels for \(n) ids") }
        guard n > 0 else { return }
        try lock.withWriteLock { () throws(VectorIndexError) in
            guard isTrained else { throw VectorIndexError(.notTrained, "add: the index is not trained") }
            // Encode in chunks: assign to lists, residuals, PQ codes.
            var listOf = [Int32](repeating: 0, count: n)
            var codes = [UInt8](repeating: 0, count: n * m)
            let chunk = 65536
            var assignment = [Int32](), dist = [Float]()
            var residuals = [Float](repeating: 0, count: min(n, chunk) * d)
            var start = 0
            while start < n {
                let rows = min(chunk, n - start)
                let x = UnsafeBufferPointer(rebasing: vectors[(start * d)..<((start + rows) * d)])
                KMeans.assign(x, count: rows, dimension: d, centroids: centroids, k: nlist,
                              into: &assignment, distances: &dist)
                for i in 0..<rows {
                    let c = Int(assignment[i])
                    listOf[start + i] = assignment[i]
                    for t in 0..<d { residuals[i * d + t] = x[i * d + t] - centroids[c * d + t] }
                }
                residuals.withUnsafeBufferPointer { r in
                    codes.withUnsafeMutableBufferPointer { out in
                        pq.encode(r, count: rows, into: UnsafeMutableBufferPointer(rebasing: out[(start * m)..<((start + rows) * m)]))
                    }
                }
                start += rows
                progress?(IndexProgress(phase: "encode", done: start, total: n))
            }
            // Group by list, then rebuild each touched list once.
            var byList = [[Int]](repeating: [], count: nlist)
            for i in 0..<n { byList[Int(listOf[i])].append(i) }
            var touched = 0
            for l in 0..<nlist where !byList[l].isEmpty {
                var (lids, llabels, lcodes) = lists.materialize(l)
                for i in byList[l] {
                    lids.append(ids[i])
                    llabels.append(labels?[i] ?? 0)
                    lcodes.append(contentsOf: codes[(i * m)..<((i + 1) * m)])
                }
                lists.replace(l, ids: lids, labels: llabels, codes: lcodes)
                touched += 1
                if touched % 256 == 0 { progress?(IndexProgress(phase: "fill lists", done: l + 1, total: nlist)) }
            }
            lists.rebuildLabelIndex()
            dropAxisOrder()
            progress?(IndexProgress(phase: "fill lists", done: nlist, total: nlist))
        }
    }

    /// Removes every entry whose id is in `ids`; returns how many entries were removed.
    /// Cost: one pass over all stored ids, plus rebuilding the lists that lose entries.
    @discardableResult
    public func remove(ids: some Sequence<Int64>) -> Int {
        let doomed = Set(ids)
        guard !doomed.isEmpty else { return 0 }
        return lock.withWriteLock {
            var removed = 0
            for l in 0..<nlist {
                let list = lists.lists[l]
                guard list.count > 0, let idp = list.ids else { continue }
                var hit = false
                for i in 0..<list.count where doomed.contains(idp[i]) { hit = true; break }
                guard hit else { continue }
                let (lids, llabels, lcodes) = lists.materialize(l)
                let m = pq.subquantizers
                var kids = [Int64](), klabels = [UInt16](), kcodes = [UInt8]()
                for i in 0..<lids.count {
                    if doomed.contains(lids[i]) { removed += 1; continue }
                    kids.append(lids[i])
                    klabels.append(llabels[i])
                    kcodes.append(contentsOf: lcodes[(i * m)..<((i + 1) * m)])
                }
                lists.replace(l, ids: kids, labels: klabels, codes: kcodes)
            }
            lists.rebuildLabelIndex()
            if removed > 0 { dropAxisOrder() }
            return removed
        }
    }

    /// The reconstruction c(x) + PQ(x - c(x)) of every stored entry with this id (for tests and
    /// diagnostics; a full scan).
    public func reconstruct(id: Int64) -> [[Float]] {
        lock.withReadLock {
            var out: [[Float]] = []
            let d = dimension, m = pq.subquantizers
            var code = [UInt8](repeating: 0, count: m)
            var residual = [Float](repeating: 0, count: d)
            for l in 0..<nlist {
                let list = lists.lists[l]
                for i in 0..<list.count where list.ids![i] == id {
                    code.withUnsafeMutableBufferPointer { lists.layout.unpack(list.codes!, entry: i, into: $0.baseAddress!) }
                    code.withUnsafeBufferPointer { c in residual.withUnsafeMutableBufferPointer { pq.decode(c.baseAddress!, into: $0.baseAddress!) } }
                    out.append((0..<d).map { centroids[l * d + $0] + residual[$0] })
                }
            }
            return out
        }
    }

    /// A reusable per-thread search context (scratch buffers; no allocation per query).
    public func makeSearcher() -> IVFPQSearcher { IVFPQSearcher(index: self) }
}
