import Foundation
import Testing
@testable import RankingModel

@Suite("User state updates")
struct StateUpdaterTests {
    static let hour: Int64 = 3_600_000
    static let t0: Int64 = 1_795_700_000_000

    let bundle: ModelBundle
    let updater: StateUpdater
    let dir: TempDir

    init() throws {
        (bundle, dir) = try TestBundle.make(items: 6).load()
        updater = StateUpdater(bundle: bundle)
    }

    func e(_ row: Int) -> [Double] { bundle.embedding(row: row).map(Double.init) }

    func event(_ id: String, item: Int64, _ action: Action, at ts: Int64, user: Int64 = 7) -> ActivityEvent {
        ActivityEvent(eventId: id, userId: user, itemId: item, action: action, ts: ts)
    }

    @Test("in-order events decay the sums by 2^(-dt/half_life) and add w·e, w and 1")
    func inOrder() throws {
        var s: UserState?
        #expect(try updater.apply(event("a", item: 1000, .click, at: Self.t0), to: &s) == .applied)
        #expect(s?.tLast == Self.t0)
        #expect(s?.embeddingSum == e(0))
        #expect(s?.categoryWeights == [1, 0, 0])
        #expect(s?.actionCounts == [0, 1, 0, 0, 0, 0, 0])

        // One half-life later (72 h): everything halves, then the like adds w = 2.
        #expect(try updater.apply(event("b", item: 1001, .like, at: Self.t0 + 72 * Self.hour), to: &s) == .applied)
        let want = zip(e(0), e(1)).map { 0.5 * $0 + 2 * $1 }
        #expect(s?.embeddingSum == want)
        #expect(s?.categoryWeights == [0.5, 2, 0])
        #expect(s?.actionCounts == [0, 0.5, 1, 0, 0, 0, 0])
        #expect(s?.tLast == Self.t0 + 72 * Self.hour)
        #expect(s?.recentEventIds == ["a", "b"])

        // A non-power-of-two gap uses the same formula.
        let before = s!
        _ = try updater.apply(event("c", item: 1002, .hide, at: Self.t0 + 100 * Self.hour), to: &s)
        let g = pow(2.0, -Double(28 * Self.hour) / (72 * 3_600_000))
        let wantS = zip(before.embeddingSum, e(2)).map { g * $0 + -3 * $1 }
        #expect(s?.embeddingSum == wantS)
        #expect(s?.categoryWeights == [g * 0.5, g * 2, -3])
        #expect(s?.actionCounts == [0, g * 0.5, g * 1, 0, 0, 0, 1])
    }

    @Test("an out-of-order event is added with its own decay 2^(-(t_last - t)/half_life) and t_last stays")
    func outOfOrder() throws {
        var s: UserState?
        _ = try updater.apply(event("a", item: 1000, .click, at: Self.t0), to: &s)
        // Two half-lives before t_last: g' = 0.25.
        #expect(try updater.apply(event("b", item: 1004, .share, at: Self.t0 - 144 * Self.hour), to: &s) == .applied)
        #expect(s?.tLast == Self.t0)
        #expect(s?.embeddingSum == zip(e(0), e(4)).map { $0 + (0.25 * 3) * $1 })
        #expect(s?.categoryWeights == [1, 0.75, 0])
        #expect(s?.actionCounts == [0, 1, 0, 0, 0.25, 0, 0])
    }

    @Test("an event for an item not in the bundle decays S and c, counts n, and reports the unknown item")
    func unknownItem() throws {
        var s: UserState?
        _ = try updater.apply(event("a", item: 1001, .like, at: Self.t0), to: &s)
        #expect(try updater.apply(event("b", item: 424242, .click, at: Self.t0 + 72 * Self.hour), to: &s) == .appliedUnknownItem)
        #expect(s?.embeddingSum == e(1).map { 2 * $0 * 0.5 })
        #expect(s?.categoryWeights == [0, 1, 0])
        #expect(s?.actionCounts == [0, 1, 0.5, 0, 0, 0, 0])
        #expect(try updater.apply(event("c", item: 424243, .impression, at: Self.t0 + 73 * Self.hour), to: &s) == .appliedUnknownItem)
        #expect(s?.impressions == [Impression(itemId: 424243, ts: Self.t0 + 73 * Self.hour)])
        // A cold user's first event on an unknown item still creates the state.
        var fresh: UserState?
        #expect(try updater.apply(event("z", item: 1, .click, at: Self.t0), to: &fresh) == .appliedUnknownItem)
        #expect(fresh?.embeddingSum == [0, 0, 0, 0] && fresh?.actionCounts[1] == 1)
    }

    @Test("impressions older than t_last - 25 h are dropped after every event; the boundary stays")
    func impressionPruning() throws {
        var s: UserState?
        for h in 0..<4 {
            _ = try updater.apply(event("i\(h)", item: 1000 + Int64(h), .impression, at: Self.t0 + Int64(h) * Self.hour), to: &s)
        }
        #expect(s?.impressions.map(\.itemId) == [1000, 1001, 1002, 1003])
        // t_last = t0 + 26 h: cutoff t0 + 1 h keeps 1001 (exactly on the boundary) and later.
        _ = try updater.apply(event("c", item: 1005, .click, at: Self.t0 + 26 * Self.hour), to: &s)
        #expect(s?.impressions.map(\.itemId) == [1001, 1002, 1003])
        // An out-of-order impression older than the window is appended and dropped at once;
        // one inside the window is kept in insertion order (not sorted by ts).
        _ = try updater.apply(event("old", item: 1004, .impression, at: Self.t0), to: &s)
        _ = try updater.apply(event("mid", item: 1005, .impression, at: Self.t0 + 2 * Self.hour), to: &s)
        #expect(s?.impressions.map(\.itemId) == [1001, 1002, 1003, 1005])
        #expect(s?.impressedItems(at: Self.t0 + 26 * Self.hour) == [1002, 1003, 1005])
    }

    @Test("a redelivered event (same event_id, or offset <= src on src's partition) is not applied")
    func duplicates() throws {
        var s: UserState?
        let p0 = { (o: Int64) in SourcePosition(partition: 0, offset: o) }
        #expect(try updater.apply(event("a", item: 1000, .click, at: Self.t0), to: &s, source: p0(10)) == .applied)
        let snapshot = s
        #expect(try updater.apply(event("a", item: 1001, .like, at: Self.t0 + 1), to: &s) == .duplicate)
        #expect(try updater.apply(event("b", item: 1001, .like, at: Self.t0 + 1), to: &s, source: p0(10)) == .duplicate)
        #expect(try updater.apply(event("b", item: 1001, .like, at: Self.t0 + 1), to: &s, source: p0(3)) == .duplicate)
        #expect(s == snapshot)
        #expect(try updater.apply(event("b", item: 1001, .like, at: Self.t0 + 1), to: &s, source: p0(11)) == .applied)
        #expect(s?.source == p0(11))
        // Another partition's offsets are not comparable: applied, and src moves there.
        let p1 = SourcePosition(partition: 1, offset: 2)
        #expect(try updater.apply(event("c", item: 1001, .like, at: Self.t0 + 2), to: &s, source: p1) == .applied)
        #expect(s?.source == p1)
        // Without a source position src is left as is.
        #expect(try updater.apply(event("d", item: 1001, .like, at: Self.t0 + 3), to: &s) == .applied)
        #expect(s?.source == p1)
    }

    @Test("recent_event_ids keeps the last 16 applied ids, oldest first")
    func recentIds() throws {
        var s: UserState?
        for i in 0..<20 { _ = try updater.apply(event("e\(i)", item: 1000, .dwell, at: Self.t0 + Int64(i)), to: &s) }
        #expect(s?.recentEventIds == (4..<20).map { "e\($0)" })
        // e3 fell out of the window, so a redelivery of it would be applied again (documented limit).
        #expect(StateUpdater.isDuplicate(event("e3", item: 1000, .dwell, at: 0), of: s!, source: nil) == false)
        #expect(StateUpdater.isDuplicate(event("e4", item: 1000, .dwell, at: 0), of: s!, source: nil))
    }

    @Test("applying another user's event throws; a state of other dimensions throws")
    func mismatches() throws {
        var s: UserState?
        _ = try updater.apply(event("a", item: 1000, .click, at: Self.t0), to: &s)
        #expect(throws: ModelError(.userMismatch, "event b of user 8 applied to the state of user 7")) {
            try updater.apply(event("b", item: 1000, .click, at: Self.t0, user: 8), to: &s)
        }
        var wrong = UserState(userId: 7, tLast: 0, embeddingSum: [0, 0], categoryWeights: [0, 0, 0], actionCounts: Array(repeating: 0, count: 7))
        #expect(throws: ModelError.self) { try updater.apply(event("c", item: 1000, .click, at: Self.t0), to: &wrong) }
    }
}
