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
        _ = offer(range, dots: dots, dotsBase: dotsBase, impressed: impressed, to: &best, atLeast: -.infinity)
    }

    /// As above, offering only the entries whose dot is at least `bar`; returns whether any of
    /// those was left out as recently shown.
    func offer(_ range: Range<Int>, dots: UnsafePointer<Float>, dotsBase: Int, impressed: IdCounts,
               to best: inout TopRows, atLeast bar: Float) -> Bool {
        var skipped = false
        guard !range.isEmpty else { return false }
        let floor = bar.nextDown
        let p = dots + (range.lowerBound - dotsBase)
        let n = range.count
        let checkImpressions = !impressed.isEmpty
        rows.withUnsafeBufferPointer { rows in
            ids.withUnsafeBufferPointer { ids in
                func consider(_ i: Int) {
                    let dot = p[i]
                    guard best.accepts(dot) else { return }
                    let entry = range.lowerBound + i
                    if checkImpressions && impressed.contains(ids[entry]) { skipped = true; return }
                    best.insert(dot, rows[entry])
                }
                var i = ThresholdScan.firstAbove(p, from: 0, to: n, threshold: max(best.threshold, floor))
                while i < n {
                    consider(i)
                    i = ThresholdScan.firstAbove(p, from: i + 1, to: n, threshold: max(best.threshold, floor))
                }
            }
        }
        return skipped
    }
}

extension FreshSlice {
    /// As `offer`, with the dot products approximated from `embeddings` as the scan goes
    /// (`Int8Rows.forEachAbove`): the same entries offered in the same order as computing the
    /// approximate dots first, but a block of eight below the threshold costs one compare.
    ///
    /// For a small top-k (k <= 8) over a long range the dots are computed first with the
    /// smallest of the kernel's eight lane maxima (`Int8Rows.dotsWithLaneBar`), and only the
    /// entries at or above it are offered: the same rows (eight entries reach that bar, so no
    /// entry below it could be kept) after ~k insertions instead of ~k·ln(n/k). If one of the
    /// entries at or above the bar was recently shown, the range is offered again in full.
    func offerApproximate(_ range: Range<Int>, query: Int8Query, impressed: IdCounts, to best: inout TopRows,
                          dots: inout [Float]) {
        guard !range.isEmpty else { return }
        if best.k <= 8 && range.count >= 64 {
            if dots.count < range.count { dots = [Float](repeating: 0, count: max(range.count, 2 * dots.count)) }
            let before = best
            dots.withUnsafeMutableBufferPointer { d in
                let bar = embeddings.dotsWithLaneBar(query, rows: range, into: d.baseAddress!)
                if offer(range, dots: d.baseAddress!, dotsBase: range.lowerBound, impressed: impressed, to: &best, atLeast: bar) {
                    best = before
                    offer(range, dots: d.baseAddress!, dotsBase: range.lowerBound, impressed: impressed, to: &best)
                }
            }
            return
        }
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
