import Testing
@testable import RankingModel

@Suite("User state JSON")
struct UserStateJSONTests {
    /// Doubles that stress shortest round-trip printing: tiny, huge, subnormal, -0, many digits.
    static func randomDouble(_ rng: inout TestRandom) -> Double {
        switch rng.int(0..<8) {
        case 0: return Double(bitPattern: rng.next() & ~(0x7FF << 52) | (UInt64(rng.int(1..<2046)) << 52))  // any finite
        case 1: return -0.0
        case 2: return Double.leastNonzeroMagnitude * Double(rng.int(1..<1000))
        case 3: return rng.uniform(-1, 1) * 1e-300
        case 4: return Double(rng.int(-1000..<1000))
        case 5: return rng.uniform(-1e22, 1e22)
        default: return rng.normal()
        }
    }

    static func randomState(_ rng: inout TestRandom) -> UserState {
        UserState(
            userId: Int64(bitPattern: rng.next()),
            tLast: Int64(rng.int(0..<Int(Int32.max))) * 1000,
            embeddingSum: (0..<rng.int(1..<40)).map { _ in randomDouble(&rng) },
            categoryWeights: (0..<rng.int(1..<12)).map { _ in randomDouble(&rng) },
            actionCounts: (0..<7).map { _ in randomDouble(&rng) },
            impressions: (0..<rng.int(0..<5)).map { _ in Impression(itemId: Int64(bitPattern: rng.next()), ts: Int64(rng.next() >> 2)) },
            source: rng.int(0..<2) == 0 ? nil : SourcePosition(partition: Int32(rng.int(0..<64)), offset: Int64(rng.next() >> 1)),
            recentEventIds: (0..<rng.int(0..<17)).map { i in i % 3 == 0 ? "e-\(rng.next())" : "é\"\\\n\u{1}😀\(i)" })
    }

    static func bits(_ v: [Double]) -> [UInt64] { v.map(\.bitPattern) }

    @Test("encode then decode is bit-exact for random states")
    func roundTripBitExact() throws {
        var rng = TestRandom(seed: 99)
        for _ in 0..<500 {
            let s = Self.randomState(&rng)
            let back = try UserState.decode(s.jsonBytes())
            #expect(Self.bits(back.embeddingSum) == Self.bits(s.embeddingSum))
            #expect(Self.bits(back.categoryWeights) == Self.bits(s.categoryWeights))
            #expect(Self.bits(back.actionCounts) == Self.bits(s.actionCounts))
            #expect(back.userId == s.userId && back.tLast == s.tLast && back.impressions == s.impressions)
            #expect(back.source == s.source && back.recentEventIds == s.recentEventIds)
            // Re-encoding the decoded state gives the same bytes.
            #expect(back.jsonBytes() == s.jsonBytes())
        }
    }

    @Test("JSONWriter writes a double exactly as Double.description spells it")
    func writerDigitsMatchDescription() {
        var rng = TestRandom(seed: 7)
        var values: [Double] = [0, -0.0, 1, -1, 0.1, 1e-7, 1e16, 123456789.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                                .leastNormalMagnitude, -.greatestFiniteMagnitude]
        for _ in 0..<20_000 { values.append(Self.randomDouble(&rng)) }
        for v in values {
            var w = JSONWriter()
            w.double(v)
            #expect(String(decoding: w.bytes, as: UTF8.self) == v.description)
        }
    }

    @Test("the encoding has the contract's shape")
    func contractShape() {
        let s = UserState(userId: 42, tLast: 1_795_700_000_000, embeddingSum: [0.5, -0.0, 1e-7], categoryWeights: [2],
                          actionCounts: [1, 0.25], impressions: [Impression(itemId: 9001, ts: 5)],
                          source: SourcePosition(partition: 3, offset: 17), recentEventIds: ["e-1", "e\"2"])
        #expect(s.jsonString == #"{"v":1,"user_id":42,"t_last":1795700000000,"S":[0.5,-0.0,1e-07],"c":[2.0],"n":[1.0,0.25],"impressions":[[9001,5]],"src":{"p":3,"o":17},"recent_event_ids":["e-1","e\"2"]}"#)
        var cold = s
        cold.source = nil
        cold.impressions = []
        cold.recentEventIds = []
        #expect(cold.jsonString.hasSuffix(#""impressions":[],"src":null,"recent_event_ids":[]}"#))
    }

    @Test("Python json.dumps output decodes: spaces, ints for floats, exponents, \\u escapes, unknown fields")
    func decodesPython() throws {
        let text = #"{"v": 1, "user_id": 42, "t_last": 1795700000000, "S": [0.1, 1, -2.5e-05, 1e+16, 0.30000000000000004], "c": [0.0, 3], "n": [1e-320], "impressions": [[9001, 1795700000000]], "src": null, "recent_event_ids": ["\u00e9-\ud83d\ude00"], "extra": {"x": [true, false, null]}}"#
        let s = try UserState.decode(Array(text.utf8))
        #expect(Self.bits(s.embeddingSum) == Self.bits([0.1, 1, -2.5e-05, 1e16, 0.30000000000000004]))
        #expect(s.categoryWeights == [0, 3])
        #expect(s.actionCounts[0].bitPattern == Double("1e-320")!.bitPattern)  // subnormal, via strtod
        #expect(s.recentEventIds == ["é-😀"])
        #expect(s.source == nil)
        #expect(s.impressions == [Impression(itemId: 9001, ts: 1_795_700_000_000)])
    }

    @Test("invalid state documents name the problem", arguments: [
        (#"{"user_id": 1, "t_last": 0, "S": [], "c": [], "n": []}"#, "field 'v': missing"),
        (#"{"v": 2, "user_id": 1, "t_last": 0, "S": [], "c": [], "n": []}"#, "field 'v': unsupported version 2 (this build reads 1)"),
        (#"{"v": 1, "user_id": 1, "S": [], "c": [], "n": []}"#, "field 't_last': missing"),
        (#"{"v": 1, "user_id": 1, "t_last": 0, "S": [NaN], "c": [], "n": []}"#, "invalid JSON at byte 43: unexpected 'N'"),
        (#"{"v": 1, "user_id": 1, "t_last": 0, "S": [1e999], "c": [], "n": []}"#, "field 'S': number 1e999 is out of range"),
        (#"{"v": 1, "user_id": 1, "t_last": 0, "S": ["1"], "c": [], "n": []}"#, "field 'S': expected a number, got a string"),
        (#"{"v": 1, "user_id": 1, "t_last": 0, "S": [], "c": [], "n": [], "impressions": [[1]]}"#, "field 'impressions[0]': expected [item_id, ts]"),
        (#"{"v": 1, "user_id": 1, "t_last": 0, "S": [], "c": [], "n": [], "src": {"o": 1}}"#, "field 'src.p': missing or out of range"),
    ])
    func invalid(text: String, message: String) {
        #expect(throws: ModelError(.invalidState, "user state JSON: \(message)")) { try UserState.decode(Array(text.utf8)) }
    }

    @Test("with a manifest, S/c/n lengths must match the bundle")
    func dimensionCheck() throws {
        let (bundle, dir) = try TestBundle.make().load()
        _ = dir
        let ok = UserState(userId: 1, firstEventAt: 0, manifest: bundle.manifest)
        #expect(try UserState.decode(ok.jsonBytes(), manifest: bundle.manifest) == ok)
        var bad = ok
        bad.embeddingSum.append(0)
        #expect(throws: ModelError(.invalidState, "user state JSON: field 'S' has 5 values, the bundle's embedding_dim needs 4")) {
            try UserState.decode(bad.jsonBytes(), manifest: bundle.manifest)
        }
    }
}
