import VectorIndex

/// The k rows with the largest dot products seen so far, kept ascending (k is small).
struct TopRows {
    let k: Int
    private var best: [(dot: Float, row: Int32)] = []
    /// What a dot must exceed to enter: -infinity until k rows are held, then the k-th best.
    private(set) var threshold = -Float.infinity

    init(k: Int) {
        self.k = k
        best.reserveCapacity(k + 1)
    }

    func accepts(_ dot: Float) -> Bool { dot > threshold }

    mutating func insert(_ dot: Float, _ row: Int32) {
        guard k > 0, dot > threshold else { return }
        guard best.count == k else {
            // Filling: insert in order, after any equal dots.
            var j = best.count
            best.append((dot, row))
            while j > 0 && best[j - 1].dot > dot { best[j] = best[j - 1]; j -= 1 }
            best[j] = (dot, row)
            if best.count == k { threshold = best[0].dot }
            return
        }
        // Full (dot > best[0].dot): the lowest leaves, the rest shift down to make room, the
        // new row lands after any equal dots. The same order as appending and dropping the first.
        best.withUnsafeMutableBufferPointer { b in
            var j = 0
            while j + 1 < k && b[j + 1].dot <= dot { b[j] = b[j + 1]; j += 1 }
            b[j] = (dot, row)
            threshold = b[0].dot
        }
    }

    /// The kept rows, best first.
    var rows: [Int32] { best.reversed().map(\.row) }
}

extension FreshSlice {
    /// Offers the entries `range` of this slice to `best` by their dot products (`dots[j -
    /// dotsBase]` for entry j), in entry order, skipping items in `impressed` (rule 3). The
    /// shared selection of the fresh and promoted sources, per ranking and per batch.
    ///
    /// Most entries cannot enter once `best` is full: `ThresholdScan` skips to the next dot
    /// above its threshold (the scalar loop was an eighth of a ranking at 1M items, over
    /// ~30,000 fresh rows).
    func offer(_ range: Range<Int>, dots: UnsafePointer<Float>, dotsBase: Int, impressed: IdCounts,
               to best: inout TopRows) {
        guard !range.isEmpty else { return }
        let p = dots + (range.lowerBound - dotsBase)
        let n = range.count
        let checkImpressions = !impressed.isEmpty
        rows.withUnsafeBufferPointer { rows in
            ids.withUnsafeBufferPointer { ids in
                func consider(_ i: Int) {
                    let dot = p[i]
                    guard best.accepts(dot) else { return }
                    let entry = range.lowerBound + i
                    if checkImpressions && impressed.contains(ids[entry]) { return }
                    best.insert(dot, rows[entry])
                }
                var i = ThresholdScan.firstAbove(p, from: 0, to: n, threshold: best.threshold)
                while i < n {
                    consider(i)
                    i = ThresholdScan.firstAbove(p, from: i + 1, to: n, threshold: best.threshold)
                }
            }
        }
    }
}

extension FreshSlice {
    /// As `offer`, with the dot products approximated from `embeddings` as the scan goes
    /// (`Int8Rows.forEachAbove`): the same entries offered in the same order as computing the
    /// approximate dots first, but a block of eight below the threshold costs one compare.
    func offerApproximate(_ range: Range<Int>, query: Int8Query, impressed: IdCounts, to best: inout TopRows) {
        guard !range.isEmpty else { return }
        let checkImpressions = !impressed.isEmpty
        rows.withUnsafeBufferPointer { rows in
            ids.withUnsafeBufferPointer { ids in
                embeddings.forEachAbove(query, rows: range, threshold: best.threshold) { entry, dot in
                    if checkImpressions && impressed.contains(ids[entry]) { return best.threshold }
                    best.insert(dot, rows[entry])
                    return best.threshold
                }
            }
        }
    }
}
