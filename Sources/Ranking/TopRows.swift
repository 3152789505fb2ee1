import VectorIndex

/// The k best rows offered so far by (dot product descending, earlier offered first), kept
/// worst first (k is small). Ties resolve one way everywhere: the kept rows and their order are
/// those of a stable sort of every offer by descending dot, cut after k, so a selection that
/// places several offers at once (`place`) keeps exactly what offering them in order keeps.
struct TopRows {
    private(set) var k: Int
    private var best: [(dot: Float, row: Int32)] = []
    /// What a dot must exceed to enter: -infinity until k rows are held, then the k-th best.
    private(set) var threshold = -Float.infinity

    init(k: Int) {
        self.k = k
        best.reserveCapacity(k + 1)
    }

    /// Empties the selection for a new k, keeping the storage (a ranker reuses one per source).
    mutating func reset(k: Int) {
        self.k = k
        best.removeAll(keepingCapacity: true)
        threshold = -.infinity
    }

    func accepts(_ dot: Float) -> Bool { dot > threshold }

    mutating func insert(_ dot: Float, _ row: Int32) {
        guard k > 0, dot > threshold else { return }
        guard best.count == k else {
            // Filling: the newest of equal dots ranks last, so it goes before them.
            var j = best.count
            best.append((dot, row))
            while j > 0 && best[j - 1].dot >= dot { best[j] = best[j - 1]; j -= 1 }
            best[j] = (dot, row)
            if best.count == k { threshold = best[0].dot }
            return
        }
        // Full (dot > best[0].dot, so an offer equal to the worst kept one stays out): the
        // worst leaves, the rest shift down to make room, the new row lands before equal dots.
        best.withUnsafeMutableBufferPointer { b in
            var j = 0
            while j + 1 < k && b[j + 1].dot < dot { b[j] = b[j + 1]; j += 1 }
            b[j] = (dot, row)
            threshold = b[0].dot
        }
    }

    /// Whether nothing is kept.
    var isEmpty: Bool { best.isEmpty }

    /// Into an empty selection, the `m` offers j = 0..<m given at once: `rank(j)` is offer j's
    /// place among them by (dot descending, earlier first), a permutation of 0..<m
    /// (`ThresholdScan.ranks`). Keeps what offering them one by one in order keeps, with no
    /// sorted insertion per offer.
    mutating func place(_ m: Int, rank: (Int) -> Int, dot: (Int) -> Float, row: (Int) -> Int32) {
        precondition(best.isEmpty, "TopRows.place: the selection must be empty")
        let kept = min(k, m)
        guard kept > 0 else { return }
        best.append(contentsOf: repeatElement((dot: Float(0), row: Int32(0)), count: kept))
        best.withUnsafeMutableBufferPointer { b in
            for j in 0..<m {
                let r = rank(j)
                if r < kept { b[kept - 1 - r] = (dot(j), row(j)) }
            }
        }
        if kept == k { threshold = best[0].dot }
    }

    /// The kept rows, best first.
    var rows: [Int32] { best.reversed().map(\.row) }

    /// Appends the kept rows, best first, to `out`.
    func appendRows(to out: inout [Int32]) {
        var i = best.count
        while i > 0 { i -= 1; out.append(best[i].row) }
    }

    /// Appends the kept rows, best first, to the group `groups` is building.
    func appendRows(to groups: inout RowGroups) {
        var i = best.count
        while i > 0 { i -= 1; groups.append(best[i].row) }
    }
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
        let rows = self.rows, ids = self.ids
        var i = ThresholdScan.firstAbove(p, from: 0, to: n, threshold: best.threshold)
        while i < n {
            let entry = range.lowerBound + i
            if !(checkImpressions && impressed.contains(ids[entry])) { best.insert(p[i], rows[entry]) }
            i = ThresholdScan.firstAbove(p, from: i + 1, to: n, threshold: best.threshold)
        }
    }

    /// Entries at or above a lane bar that `offer(atLeast:)` handles; more (ties) go to the
    /// full offer.
    static let gatherLimit = 64

    /// Into an empty `best`, the entries of `first` then `second` (ascending, disjoint; their
    /// dots at `dots[0..<first.count]`, then the next `second.count`) whose dot is at least `bar`
    /// (> -infinity), when none of those is recently shown and there are at most
    /// `gatherLimit`: returns false then. Otherwise returns true with `best` unchanged, and the
    /// caller offers the ranges in full.
    ///
    /// The few entries that reach the bar are found first, then their ids and rows are loaded
    /// with independent loads (one after another, each was a cache miss at 1M items), then each
    /// one's rank among them is computed in one branch-free pass and the k best are put in
    /// place (`TopRows.place`): what offering them in entry order keeps, without a sorted
    /// insertion (a run of mispredicted compares) per entry.
    func offer(_ first: Range<Int>, _ second: Range<Int>, dots p: UnsafePointer<Float>, impressed: IdCounts,
               to best: inout TopRows, atLeast bar: Float) -> Bool {
        precondition(bar > -.infinity, "offer(atLeast:) needs a bar")
        precondition(best.isEmpty, "offer(atLeast:) fills an empty selection")
        precondition(first.upperBound <= second.lowerBound || second.isEmpty, "offer(atLeast:): ranges out of order")
        let n1 = first.count, n = n1 + second.count
        guard n > 0 else { return false }
        let shift = second.lowerBound - n1
        @inline(__always) func entry(_ position: Int) -> Int { position < n1 ? first.lowerBound + position : shift + position }
        let checkImpressions = !impressed.isEmpty
        let rows = self.rows, ids = self.ids
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: Self.gatherLimit) { at -> Bool in
            guard let m = ThresholdScan.positions(p, count: n, above: bar.nextDown, into: at.baseAddress!, limit: Self.gatherLimit) else {
                return true
            }
            var touch: Int64 = 0
            for j in 0..<m { touch &+= Int64(rows[entry(Int(at[j]))]) }
            if checkImpressions {
                for j in 0..<m where impressed.contains(ids[entry(Int(at[j]))]) { return true }
            }
            // (A test the loads' sum cannot fail in practice keeps them from being
            // optimised away.)
            if touch == .min { return true }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.gatherLimit) { g in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: Self.gatherLimit) { ranks in
                    for j in 0..<m { g[j] = p[Int(at[j])] }
                    var j = m
                    while j & 7 != 0 { g[j] = -.infinity; j += 1 }
                    ThresholdScan.ranks(g.baseAddress!, count: m, into: ranks.baseAddress!, padded: true)
                    best.place(m, rank: { Int(ranks[$0]) }, dot: { g[$0] }, row: { rows[entry(Int(at[$0]))] })
                }
            }
            return false
        }
    }
}

extension FreshSlice {
    /// As `offer`, with the dot products approximated from `embeddings` as the scan goes
    /// (`Int8Rows.forEachAbove`): the same entries offered in the same order as computing the
    /// approximate dots first, but a block of eight below the threshold costs one compare.
    ///
    /// For a small top-k (k <= 16) into an empty selection over 16 rows or more, the dots are
    /// computed first, then a bar that at least k of them reach (`ThresholdScan.laneBar`: the
    /// k-th largest of 32 lanes' maxima), and only the ~k + 1 entries at or above it are
    /// offered: the same rows (no entry below the bar could be kept) without ~k·ln(n/k)
    /// insertions. If one of the entries at or above the bar was recently shown, the range is
    /// offered in full instead.
    func offerApproximate(_ range: Range<Int>, query: Int8Query, impressed: IdCounts, to best: inout TopRows,
                          dots: inout [Float]) {
        offerApproximate(range, 0..<0, query: query, impressed: impressed, to: &best, dots: &dots)
    }

    /// As above for the entries of `first` then `second` (ascending, disjoint), as one run.
    func offerApproximate(_ first: Range<Int>, _ second: Range<Int>, query: Int8Query, impressed: IdCounts,
                          to best: inout TopRows, dots: inout [Float]) {
        let n1 = first.count, n = n1 + second.count
        guard n > 0 else { return }
        if best.isEmpty && best.k >= 1 && best.k <= 16 && n >= 16 {
            if dots.count < n { dots = [Float](repeating: 0, count: max(n, 2 * dots.count)) }
            dots.withUnsafeMutableBufferPointer { d in
                let p = d.baseAddress!
                if n1 > 0 { embeddings.dots(query, rows: first, into: p) }
                if !second.isEmpty { embeddings.dots(query, rows: second, into: p + n1) }
                let bar = ThresholdScan.laneBar(p, count: n, k: best.k)
                if bar == -.infinity || offer(first, second, dots: p, impressed: impressed, to: &best, atLeast: bar) {
                    offer(first, dots: p, dotsBase: first.lowerBound, impressed: impressed, to: &best)
                    offer(second, dots: p + n1, dotsBase: second.lowerBound, impressed: impressed, to: &best)
                }
            }
            return
        }
        if n1 > 0 { offerScanning(first, query: query, impressed: impressed, to: &best) }
        if !second.isEmpty { offerScanning(second, query: query, impressed: impressed, to: &best) }
    }

    /// `offerApproximate` for one range, offering as the int8 scan goes.
    private func offerScanning(_ range: Range<Int>, query: Int8Query, impressed: IdCounts, to best: inout TopRows) {
        let checkImpressions = !impressed.isEmpty
        let rows = self.rows, ids = self.ids
        embeddings.forEachAbove(query, rows: range, threshold: best.threshold) { entry, dot in
            if checkImpressions && impressed.contains(ids[entry]) { return best.threshold }
            best.insert(dot, rows[entry])
            return best.threshold
        }
    }
}
