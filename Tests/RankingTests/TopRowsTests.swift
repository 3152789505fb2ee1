import LinearAlgebra
import RankingModel
@testable import Ranking
import TestSupport
import Testing
import VectorIndex

@Suite("Top-k selection of the fresh and promoted sources")
struct TopRowsTests {
    /// A synthetic bundle of `items` items (keep the directory alive while it is used).
    static func bundle(items: Int, dimension: Int) throws -> (ModelBundle, ScratchDirectory) {
        var spec = SyntheticBundle()
        spec.items = items
        spec.dimension = dimension
        return try spec.load()
    }

    @Test("TopRows keeps the k best offers by descending dot, the earlier of equal dots first (a stable sort cut after k), for k 1..20 and 0..300 offers with many ties")
    func topRowsEqualsStableSort() {
        var rng = SeededRandom(seed: 5)
        for k in 1...20 {
            for n in stride(from: 0, through: 300, by: 7) {
                // Coarse dots so ties happen.
                let dots = (0..<n).map { _ in Float(rng.next() % 40) / 8 }
                var top = TopRows(k: k)
                for (i, d) in dots.enumerated() where top.accepts(d) { top.insert(d, Int32(i)) }
                let expected = dots.indices.sorted { dots[$0] != dots[$1] ? dots[$0] > dots[$1] : $0 < $1 }.prefix(k).map { Int32($0) }
                #expect(top.rows == expected, "k \(k), n \(n)")
            }
        }
    }

    @Test("TopRows.place with ThresholdScan.ranks keeps what offering the same dots one by one keeps, ties included, for 0..64 offers and k 1..12")
    func placeEqualsInsertingInOrder() {
        var rng = SeededRandom(seed: 31)
        for m in 0...64 {
            for k in 1...12 {
                // Coarse dots (ties), -0 and +0 among them.
                let dots = (0..<m).map { _ -> Float in
                    let v = Float(Int(rng.next() % 9) - 4) / 4
                    return v == 0 && rng.next() % 2 == 0 ? -0.0 : v
                }
                var inserted = TopRows(k: k)
                for (j, d) in dots.enumerated() { inserted.insert(d, Int32(j)) }
                var ranks = [Int32](repeating: -1, count: max(m, 1))
                var padded = dots + [Float](repeating: -.infinity, count: (8 - m % 8) % 8)
                if padded.isEmpty { padded = [0] }
                for usePadding in [false, true] {
                    padded.withUnsafeBufferPointer { v in
                        ranks.withUnsafeMutableBufferPointer { ThresholdScan.ranks(v.baseAddress!, count: m, into: $0.baseAddress!, padded: usePadding) }
                    }
                    #expect(Set(ranks.prefix(m)) == Set((0..<m).map { Int32($0) }), "ranks are a permutation, m \(m)")
                    var placed = TopRows(k: k)
                    placed.place(m, rank: { Int(ranks[$0]) }, dot: { dots[$0] }, row: { Int32($0) })
                    #expect(placed.rows == inserted.rows, "m \(m), k \(k), padded \(usePadding)")
                    #expect(placed.threshold == inserted.threshold)
                }
            }
        }
    }

    @Test("ThresholdScan.laneBar is a value at least k of the values reach and at most the largest, -infinity only when fewer than k values, for lengths 0..300 and k 1..32")
    func laneBarIsReachedByK() {
        var rng = SeededRandom(seed: 41)
        for n in stride(from: 0, through: 300, by: 3) {
            let values = (0..<n).map { _ in Float(Int(rng.next() % 200) - 100) / 10 }
            for k in [1, 2, 5, 8, 12, 16, 32] {
                let bar = values.withUnsafeBufferPointer { ThresholdScan.laneBar($0.baseAddress!, count: n, k: k) }
                if n < k {
                    #expect(bar == -.infinity, "n \(n), k \(k)")
                } else {
                    #expect(values.contains(bar), "n \(n), k \(k): the bar is one of the values")
                    #expect(values.filter { $0 >= bar }.count >= k, "n \(n), k \(k)")
                }
            }
        }
        // Over ~150 values a top-8 offers about eleven or fewer (the eight lanes' bar left ~20).
        var offered = 0
        for _ in 0..<200 {
            let values = (0..<150).map { _ in Float(rng.gaussian()) }
            let bar = values.withUnsafeBufferPointer { ThresholdScan.laneBar($0.baseAddress!, count: 150, k: 8) }
            offered += values.filter { $0 >= bar }.count
        }
        #expect(offered <= 200 * 11, "\(Double(offered) / 200) values at or above the bar on average")
    }

    @Test("ThresholdScan.firstAbove finds the first value above the threshold at every offset and length")
    func firstAbove() {
        var rng = SeededRandom(seed: 9)
        let values = (0..<200).map { _ in Float(rng.next() % 100) }
        values.withUnsafeBufferPointer { v in
            for start in 0..<40 {
                for end in start..<min(200, start + 60) {
                    for t: Float in [-1, 50, 90, 98, 100] {
                        let expected = (start..<end).first { values[$0] > t } ?? end
                        #expect(ThresholdScan.firstAbove(v.baseAddress!, from: start, to: end, threshold: t) == expected)
                    }
                }
            }
        }
    }

    @Test("ThresholdScan.positions lists every position above the threshold in order for every length, or nil past the limit")
    func positionsAbove() {
        var rng = SeededRandom(seed: 13)
        let values = (0..<200).map { _ in Float(rng.next() % 100) }
        var out = [Int32](repeating: -1, count: 200)
        values.withUnsafeBufferPointer { v in
            for n in 0..<200 {
                for t: Float in [-1, 50, 90, 98, 100] {
                    let expected = (0..<n).filter { values[$0] > t }.map { Int32($0) }
                    for limit in [0, 3, 64, 200] {
                        let got = out.withUnsafeMutableBufferPointer {
                            ThresholdScan.positions(v.baseAddress!, count: n, above: t, into: $0.baseAddress!, limit: limit)
                        }
                        if expected.count <= limit {
                            #expect(got == expected.count && Array(out.prefix(expected.count)) == expected, "n \(n), t \(t), limit \(limit)")
                        } else {
                            #expect(got == nil, "n \(n), t \(t), limit \(limit)")
                        }
                    }
                }
            }
        }
    }

    @Test("slices sharing one column block each hold their own rows by published_at with those items' times and ids, also when the block is on huge pages")
    func slicesShareOneColumnBlock() throws {
        let (bundle, dir) = try Self.bundle(items: 400, dimension: 8)
        defer { withExtendedLifetime(dir) {} }
        var rng = SeededRandom(seed: 17)
        // Disjoint random subsets, one empty; then one block past the huge-page threshold.
        let all = (0..<Int32(400)).shuffled(using: &rng)
        let parts = [Array(all[0..<150]), [], Array(all[150..<151]), Array(all[151..<400])]
        for padding in [0, HugePageMemory.minimumBytes / 20] {
            let columns = SliceColumns(counts: parts.map(\.count) + [padding])
            let slices = parts.enumerated().map { FreshSlice(bundle: bundle, rows: $1, columns: columns, slot: $0) }
            for (slice, part) in zip(slices, parts) {
                let expected = part.sorted { a, b in
                    let pa = bundle.items[Int(a)].publishedAt, pb = bundle.items[Int(b)].publishedAt
                    return pa != pb ? pa < pb : a < b
                }
                #expect(Array(slice.rows) == expected)
                #expect(Array(slice.published) == expected.map { bundle.items[Int($0)].publishedAt })
                #expect(Array(slice.ids) == expected.map { bundle.items[Int($0)].id })
            }
        }
    }

    @Test("the fresh window's search finds the first entry published after t for every t around each published time, at any length")
    func firstPublishedAfter() throws {
        let (bundle, dir) = try Self.bundle(items: 300, dimension: 8)
        defer { withExtendedLifetime(dir) {} }
        for n in [0, 1, 2, 3, 7, 8, 64, 300] {
            let slice = FreshSlice(bundle: bundle, rows: (0..<Int32(n)).map { $0 })
            let times = slice.published
            var probes = Set(times)
            for t in times { probes.insert(t - 1); probes.insert(t + 1) }
            probes.insert(.min); probes.insert(.max)
            for t in probes {
                let expected = times.firstIndex { $0 > t } ?? times.count
                #expect(slice.firstAfter(t) == expected, "n \(n), t \(t)")
                // With any hint, right or wrong (the last ranking's edges).
                for hint in [-1, 0, expected - 1, expected, expected + 1, n, n + 1] {
                    #expect(slice.firstAfter(t, hint: hint) == expected, "n \(n), t \(t), hint \(hint)")
                }
            }
        }
    }

    @Test("the first round scores the best index and fresh candidates first, the rest later, each row once")
    func firstRoundSplit() {
        var rng = SeededRandom(seed: 11)
        for _ in 0..<500 {
            let index = (0..<Int(rng.next() % 20)).map { _ in Int32(rng.next() % 40) }.reduce(into: [Int32]()) { if !$0.contains($1) { $0.append($1) } }
            let fresh = (0..<Int(rng.next() % 12)).map { _ in Int32(rng.next() % 40) }.reduce(into: [Int32]()) { if !$0.contains($1) { $0.append($1) } }
            let a = Int(rng.next() % 10), b = Int(rng.next() % 6)
            let (now, later) = FeedRanker.split(index: index, fresh: fresh, firstIndex: a, firstFresh: b)
            #expect(Set(now).count == now.count && Set(later).count == later.count)
            #expect(Set(now).isDisjoint(with: later))
            #expect(Set(now).union(later) == Set(index).union(fresh))
            #expect(Set(now) == Set(index.prefix(a)).union(fresh.prefix(b)))
            // Nothing scored later ranks before something scored now in its own source.
            #expect(Array(now.prefix(min(a, index.count))) == Array(index.prefix(a)))
        }
    }

    @Test("the fresh and promoted sources' selection from a lane bar keeps exactly the rows offering every dot in order keeps, over one range or two, with and without recently shown rows among the best")
    func laneBarSelectionEqualsFullOffer() throws {
        let (bundle, dir) = try Self.bundle(items: 700, dimension: 16)
        defer { withExtendedLifetime(dir) {} }
        let slice = FreshSlice(bundle: bundle, rows: (0..<Int32(bundle.itemCount)).map { $0 })
        var rng = SeededRandom(seed: 21)
        var filtered = 0
        for trial in 0..<120 {
            let u = (0..<bundle.embeddingDimension).map { _ in Float(rng.gaussian()) }
            let query = u.withUnsafeBufferPointer { Int8Query($0.baseAddress!, dimension: bundle.embeddingDimension) }
            let lo = Int(rng.next() % 200), hi = lo + 64 + Int(rng.next() % 400)
            let k = 1 + Int(rng.next() % 16)
            var all = [Float](repeating: 0, count: slice.count)
            all.withUnsafeMutableBufferPointer { slice.embeddings.dots(query, rows: 0..<slice.count, into: $0.baseAddress!) }
            // Every third trial: some of the range's best rows were recently shown.
            var impressed = IdCounts.empty
            if trial % 3 == 0 {
                let best = (lo..<hi).sorted { all[$0] > all[$1] }
                for e in best.prefix(12) where rng.next() % 2 == 0 { impressed.insert(slice.ids[e]) }
            }
            var expected = TopRows(k: k)
            all.withUnsafeBufferPointer { slice.offer(lo..<hi, dots: $0.baseAddress!, dotsBase: 0, impressed: impressed, to: &expected) }
            var got = TopRows(k: k)
            var scratch: [Float] = []
            slice.offerApproximate(lo..<hi, query: query, impressed: impressed, to: &got, dots: &scratch)
            #expect(got.rows == expected.rows, "trial \(trial): k \(k), rows \(lo)..<\(hi)")
            #expect(got.rows.count == k)
            // Two ranges with a gap (the promoted source's older entries), as one run.
            let cut = lo + Int(rng.next() % UInt64(hi - lo)), gap = Int(rng.next() % 40)
            let second = min(cut + gap, hi)..<hi
            var expected2 = TopRows(k: k)
            all.withUnsafeBufferPointer {
                slice.offer(lo..<cut, dots: $0.baseAddress!, dotsBase: 0, impressed: impressed, to: &expected2)
                slice.offer(second, dots: $0.baseAddress!, dotsBase: 0, impressed: impressed, to: &expected2)
            }
            var got2 = TopRows(k: k)
            slice.offerApproximate(lo..<cut, second, query: query, impressed: impressed, to: &got2, dots: &scratch)
            #expect(got2.rows == expected2.rows, "trial \(trial): k \(k), rows \(lo)..<\(cut) and \(second)")
            // The bar: at least eight rows of the range reach it, and it is one of their dots.
            let bar = all.withUnsafeBufferPointer { ThresholdScan.laneBar($0.baseAddress! + lo, count: hi - lo, k: k) }
            #expect((lo..<hi).filter { all[$0] >= bar }.count >= k)
            // Count the trials where the impression filter changed the selection (the fallback).
            var unfiltered = TopRows(k: k)
            all.withUnsafeBufferPointer { slice.offer(lo..<hi, dots: $0.baseAddress!, dotsBase: 0, impressed: .empty, to: &unfiltered) }
            if unfiltered.rows != expected.rows { filtered += 1 }
        }
        #expect(filtered >= 10, "recently shown rows among the best in \(filtered) trials")
    }
}
