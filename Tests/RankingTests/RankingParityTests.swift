import Foundation
import Ranking
import RankingModel
import TestSupport
import Testing

/// `feedrank rank --exact` against tools/rank_reference.py, a plain Python implementation of
/// contract section 3 (numpy + the PyTorch reference tower), on 1,000 demo-world users.
@Suite("ranking parity with the Python reference")
struct RankingParityTests {
    struct RefList: Decodable {
        struct Item: Decodable { let item_id: Int64; let score: Double; let rank: Int; let promoted: Bool }
        let user_id: Int64
        let items: [Item]
        let short: Bool
    }

    @Test("exact lists for 1,000 demo users equal the Python reference: same items in the same order (up to float32 ties), scores within 1e-4")
    func exactListsMatchPython() throws {
        let root = PackageRoot.path
        let python = root + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("no project venv at \(python): run scripts/install.sh")
            return
        }
        let dir = ScratchDirectory("rank-parity")
        let cases = dir.path + "/cases.jsonl", ref = dir.path + "/ref.jsonl"
        try run(python, [root + "/tools/parity.py", "--bundle", root + "/demo/bundle", "--users", "1000", "--seed", "11", "--out", cases])
        try run(python, [root + "/tools/rank_reference.py", "--bundle", root + "/demo/bundle", "--cases", cases,
                         "--num-items", "50", "--out", ref])
        let bundle = try ModelBundle.load(directory: root + "/demo/bundle")
        let catalog = try RankingCatalog(bundle: bundle, index: nil)
        let ranker = FeedRanker(catalog: catalog)
        let updater = StateUpdater(bundle: bundle)
        let caseLines = try String(contentsOfFile: cases, encoding: .utf8).split(separator: "\n")
        let refLines = try String(contentsOfFile: ref, encoding: .utf8).split(separator: "\n")
        #expect(caseLines.count == 1000 && refLines.count == 1000)
        var mismatches: [String] = []
        var maxScoreDiff = 0.0
        var compared = 0, fresh = 0, promoted = 0, tieSwaps = 0
        for (cLine, rLine) in zip(caseLines, refLines) {
            let obj = try JSONSerialization.jsonObject(with: Data(cLine.utf8)) as! [String: Any]
            let user = (obj["user_id"] as! NSNumber).int64Value
            let at = (obj["at"] as! NSNumber).int64Value
            let device = obj["device"] as? String
            var state: UserState?
            for e in obj["events"] as! [Any] {
                let bytes = Array(try JSONSerialization.data(withJSONObject: e))
                _ = try updater.apply(try ActivityEvent.parse(bytes), to: &state)
            }
            let out = ranker.rank(RankingInput(userId: user, state: state, at: at, device: device, numItems: 50, mode: .exact))
            let expected = try JSONDecoder().decode(RefList.self, from: Data(rLine.utf8))
            #expect(expected.user_id == user)
            compared += 1
            fresh += out.items.filter { $0.reasons.contains("fresh_boost") }.count
            promoted += out.items.filter(\.promoted).count
            let ours = out.items.map(\.itemId), theirs = expected.items.map(\.item_id)
            // Two items whose float32 dot products tie in one implementation and differ by an ulp
            // in the other (numpy's BLAS sums in another order) may swap places; that is the only
            // difference allowed: same items, same promoted slots, scores position by position
            // within 1e-6.
            let sameUpToTies = Set(ours) == Set(theirs) && ours.count == theirs.count
                && zip(out.items, expected.items).allSatisfy { abs($0.score - $1.score) < 1e-6 }
            if ours != theirs && sameUpToTies { tieSwaps += 1 }
            if (ours != theirs && !sameUpToTies) || out.items.map(\.promoted) != expected.items.map(\.promoted) || out.short != expected.short {
                let i = (0..<min(ours.count, theirs.count)).first { ours[$0] != theirs[$0] } ?? min(ours.count, theirs.count)
                let detail = i < min(ours.count, theirs.count)
                    ? "at rank \(i + 1): ours \(ours[i]) (\(out.items[i].score)) vs reference \(theirs[i]) (\(expected.items[i].score)); next \(ours.dropFirst(i + 1).prefix(2)) vs \(theirs.dropFirst(i + 1).prefix(2))"
                    : "lengths \(ours.count) vs \(theirs.count), short \(out.short) vs \(expected.short)"
                mismatches.append("user \(user) at \(at): \(detail)")
                continue
            }
            for (a, b) in zip(out.items, expected.items) where a.itemId == b.item_id { maxScoreDiff = max(maxScoreDiff, abs(a.score - b.score)) }
        }
        #expect(compared == 1000)
        #expect(mismatches.isEmpty, "\(mismatches.count) lists differ: \(mismatches.prefix(3))")
        #expect(maxScoreDiff < 1e-4, "max score difference \(maxScoreDiff)")
        #expect(tieSwaps <= 10, "\(tieSwaps) lists differ by float32 ties")
        // The cases exercise the boost and the promoted slots.
        #expect(fresh > 0 && promoted > 0)
    }

    private func run(_ exe: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw RankingError("\(args[0]) failed (\(p.terminationStatus)): \(String(decoding: data.suffix(500), as: UTF8.self))")
        }
    }
}
