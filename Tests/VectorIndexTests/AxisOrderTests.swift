import Foundation
import Testing
@testable import VectorIndex

@Suite("IVF-PQ lists ordered along the residuals' principal axis")
struct AxisOrderTests {
    static let data = TestData(count: 3000, dimension: 16, clusters: 12)
    static let queries = TestData(count: 20, dimension: 16, clusters: 12, seed: 8)

    /// Per list, its (id, label) pairs sorted (the content, whatever the order).
    static func content(_ index: IVFPQIndex) -> [[String]] {
        (0..<index.nlist).map { l in
            let (ids, labels, _) = index.lists.materialize(l)
            return zip(ids, labels).map { "\($0.0)/\($0.1)" }.sorted()
        }
    }

    @Test("ordering keeps every list's entries, sorts each label run by its axis coordinate, and survives save and load")
    func orderingKeepsEntriesAndSortsRuns() throws {
        let index = try makeIndex(Self.data, m: 8, bits: 4, labelCount: 4)
        let before = Self.content(index)
        #expect(!index.isOrderedAlongAxis)
        index.orderAlongPrincipalAxis()
        #expect(index.isOrderedAlongAxis)
        #expect(Self.content(index) == before)
        // The axis is a unit vector; coordinates ascend within every run.
        let norm = index.axis.reduce(0) { $0 + $1 * $1 }
        #expect(abs(norm - 1) < 1e-4)
        var runs = 0
        for l in 0..<index.nlist {
            let list = index.lists.lists[l]
            for r in 0..<list.runCount {
                let start = Int(list.runs![r].start), end = r + 1 < list.runCount ? Int(list.runs![r + 1].start) : list.count
                let t = index.axisCoordinates[(index.axisOffsets[l] + start)..<(index.axisOffsets[l] + end)]
                #expect(zip(t, t.dropFirst()).allSatisfy { $0 <= $1 }, "list \(l) run \(r)")
                runs += 1
            }
        }
        #expect(runs > index.nlist, "lists with several labels occur")
        let path = temporaryPath("ordered.ivfpq")
        defer { unlink(path) }
        try index.save(to: path)
        let loaded = try IVFPQIndex.load(from: path, expectedDimension: 16)
        #expect(loaded.isOrderedAlongAxis)
        #expect(loaded.axis == index.axis)
        #expect(loaded.residualMoments == index.residualMoments)
        #expect(loaded.axisCoordinates == index.axisCoordinates)
        let p = SearchParameters(nprobe: 4, axisSlack: 3)
        let s1 = index.makeSearcher(), s2 = loaded.makeSearcher()
        for qi in 0..<5 {
            #expect(s1.search(Self.queries.row(qi), k: 5, parameters: p, filter: .label(1))
                    == s2.search(Self.queries.row(qi), k: 5, parameters: p, filter: .label(1)))
        }
    }

    @Test("on an ordered index a per-label search with a slack no block can miss returns the whole-list top k; a slack of 3 scans fewer entries and keeps most of it")
    func orderedScanMatchesWholeListsWithinTheSlack() throws {
        let index = try makeIndex(Self.data, m: 8, bits: 4, labelCount: 4)
        index.orderAlongPrincipalAxis()
        let searcher = index.makeSearcher()
        var kept = 0, total = 0, wholeEntries = 0, slackEntries = 0
        for qi in 0..<Self.queries.count {
            let q = Self.queries.row(qi)
            for label in 0..<4 {
                for k in [1, 5, 20] {
                    searcher.resetStatistics()
                    let whole = searcher.search(q, k: k, parameters: SearchParameters(nprobe: 3), filter: .label(UInt16(label)))
                    wholeEntries += searcher.statistics.entriesScanned
                    let huge = searcher.search(q, k: k, parameters: SearchParameters(nprobe: 3, axisSlack: 1e9),
                                               filter: .label(UInt16(label)))
                    // The same k best approximate scores (entries tied at the k-th may differ).
                    #expect(huge.map(\.score).sorted() == whole.map(\.score).sorted(), "query \(qi) label \(label) k \(k)")
                    searcher.resetStatistics()
                    let three = searcher.search(q, k: k, parameters: SearchParameters(nprobe: 3, axisSlack: 3),
                                                filter: .label(UInt16(label)))
                    slackEntries += searcher.statistics.entriesScanned
                    #expect(three.count == whole.count)
                    kept += Set(three.map(\.id)).intersection(whole.map(\.id)).count
                    total += whole.count
                }
            }
        }
        #expect(Double(kept) / Double(total) > 0.9, "kept \(kept) of \(total)")
        #expect(slackEntries < wholeEntries, "\(slackEntries) entries scanned against \(wholeEntries)")
        // The ranking's per-label search takes the same path.
        let q = Self.queries.row(0)
        let perLabel = searcher.searchPerLabel(q, labels: [0, 2], k: 5, parameters: SearchParameters(nprobe: 3, axisSlack: 3))
        #expect(perLabel[1] == searcher.search(q, k: 5, parameters: SearchParameters(nprobe: 3, axisSlack: 3), filter: .label(2)))
    }

    @Test("adding or removing entries drops the order; searches then scan whole lists")
    func changesDropTheOrder() throws {
        let index = try makeIndex(Self.data, m: 8, bits: 4, labelCount: 4)
        index.orderAlongPrincipalAxis()
        #expect(index.remove(ids: [123_456]) == 0)
        #expect(index.isOrderedAlongAxis, "removing nothing keeps it")
        #expect(index.remove(ids: [0]) == 1)
        #expect(!index.isOrderedAlongAxis)
        index.orderAlongPrincipalAxis()
        try Self.data.row(0).withUnsafeBufferPointer { try index.add($0, ids: [0], labels: [0]) }
        #expect(!index.isOrderedAlongAxis)
        let searcher = index.makeSearcher()
        let q = Self.queries.row(1)
        #expect(searcher.search(q, k: 5, parameters: SearchParameters(nprobe: 3, axisSlack: 3), filter: .label(0))
                == searcher.search(q, k: 5, parameters: SearchParameters(nprobe: 3), filter: .label(0)))
    }
}
