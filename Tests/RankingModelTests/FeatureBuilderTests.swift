import Foundation
import Testing
@testable import RankingModel

@Suite("Features")
struct FeatureBuilderTests {
    static let t0: Int64 = 1_795_700_000_000
    let bundle: ModelBundle
    let builder: FeatureBuilder
    let dir: TempDir

    init() throws {
        (bundle, dir) = try TestBundle.make().load()
        builder = FeatureBuilder(manifest: bundle.manifest)
    }

    /// D = 4, C = 3, A = 7, K = 4 + 3 + 1.
    var contextStart: Int { 14 }

    @Test("the UTC hour and Monday-based weekday agree with Foundation's calendar, before and after 1970")
    func hourAndWeekday() {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        var rng = TestRandom(seed: 3)
        let samples: [Int64] = [0, -1, -86_400_000, -86_400_001, 86_399_999, Self.t0] + (0..<200).map { _ in Int64(rng.int(-4_000_000_000..<4_000_000_000)) * 1000 + Int64(rng.int(0..<1000)) }
        for t in samples {
            let date = Date(timeIntervalSince1970: Double(t) / 1000)
            let c = cal.dateComponents([.hour, .weekday], from: date)
            let (h, d) = FeatureBuilder.utcHourAndWeekday(t)
            #expect(h == c.hour!, "hour of \(t)")
            #expect(d == (c.weekday! + 5) % 7, "weekday of \(t)")   // Foundation: Sunday = 1
        }
    }

    @Test("a cold start has zero activity features, the time context, and a device one-hot with an unknown slot")
    func coldStart() {
        // 1795700000000 ms = 2026-11-26 13:33:20 UTC, a Thursday (weekday 3).
        let x = builder.build(state: nil, at: Self.t0, device: "android")
        #expect(x.count == 22)
        #expect(x[0..<14].allSatisfy { $0 == 0 })
        let h = 13.0, d = 3.0
        #expect(Array(x[14..<18]) == [Float(sin(2 * .pi * h / 24)), Float(cos(2 * .pi * h / 24)),
                                      Float(sin(2 * .pi * d / 7)), Float(cos(2 * .pi * d / 7))])
        #expect(Array(x[18..<22]) == [0, 1, 0, 0])
        #expect(Array(builder.build(state: nil, at: Self.t0, device: "tv")[18..<22]) == [0, 0, 0, 1])
        #expect(Array(builder.build(state: nil, at: Self.t0, device: nil)[18..<22]) == [0, 0, 0, 1])
    }

    @Test("activity features: S/|S|, c/(Σ|c|+1), log1p(n), all decayed to T (also when T < t_last)")
    func activity() {
        let s = UserState(userId: 1, tLast: Self.t0, embeddingSum: [3, 4, 0, 0], categoryWeights: [1, -2, 1],
                          actionCounts: [4, 1, 0, 0, 0, 0, 2])
        var x = builder.build(state: s, at: Self.t0, device: "ios")
        #expect(Array(x[0..<4]) == [0.6, 0.8, 0, 0])
        #expect(Array(x[4..<7]) == [Float(0.2), Float(-0.4), Float(0.2)])
        #expect(Array(x[7..<14]) == [4.0, 1, 0, 0, 0, 0, 2].map { Float(log1p($0)) })
        #expect(x[18] == 1)

        // One half-life later: f = 0.5.
        x = builder.build(state: s, at: Self.t0 + 72 * 3_600_000, device: "ios")
        #expect(Array(x[0..<4]) == [0.6, 0.8, 0, 0])
        #expect(Array(x[4..<7]) == [Float(0.5 / 3), Float(-1.0 / 3), Float(0.5 / 3)])
        #expect(Array(x[7..<14]) == [2.0, 0.5, 0, 0, 0, 0, 1].map { Float(log1p($0)) })

        // Half a half-life *before* t_last: f = 2^(1/2), applied as is.
        let f = pow(2.0, 0.5)
        x = builder.build(state: s, at: Self.t0 - 36 * 3_600_000, device: "ios")
        #expect(Array(x[4..<7]) == [f * 1, f * -2, f * 1].map { Float($0 / (4 * f + 1)) })
        #expect(Array(x[7..<14]) == [4.0, 1, 0, 0, 0, 0, 2].map { Float(log1p(f * $0)) })

        // |S| = 0 gives zeros, not NaN.
        let zero = UserState(userId: 1, tLast: Self.t0, embeddingSum: [0, 0, 0, 0], categoryWeights: [0, 0, 0], actionCounts: [0, 0, 0, 0, 0, 0, 0])
        #expect(builder.build(state: zero, at: Self.t0, device: nil)[0..<14].allSatisfy { $0 == 0 })
    }
}
