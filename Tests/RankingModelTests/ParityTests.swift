import Foundation
import Testing
@testable import RankingModel

/// Swift against the independent PyTorch reference (tools/parity.py): for the same bundle and
/// event sequences, the state, the features x and the user embedding u must agree. Runs the
/// project venv's Python; a missing venv, tool or demo bundle is a failure, not a skip (CI
/// installs them).
@Suite("Parity with the PyTorch reference")
struct ParityTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Case {
        var userId: Int64 = 0
        var kind = ""
        var events: [ActivityEvent] = []
        var at: Int64 = 0
        var device: String?
        var x: [Double] = []
        var u: [Double] = []
        var state: UserState?
        var line = 0
    }

    @Test("1000 users: state within 1e-9 relative, x within 1e-6, u within 1e-5 (single and batch)")
    func parity() throws {
        let root = Self.packageRoot.path
        let python = "\(root)/.venv/bin/python"
        let tool = "\(root)/tools/parity.py"
        let bundleDir = "\(root)/demo/bundle"
        for (what, path) in [("the project venv (scripts/install.sh)", python), ("tools/parity.py", tool),
                             ("demo/bundle (scripts/make-demo.sh)", "\(bundleDir)/manifest.json")] {
            try #require(FileManager.default.fileExists(atPath: path), "\(what) is missing: \(path)")
        }
        let dir = TempDir()
        let out = "\(dir.path)/parity.jsonl"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [tool, "--bundle", "demo/bundle", "--users", "1000", "--seed", "7", "--out", out]
        p.currentDirectoryURL = Self.packageRoot
        var env = ProcessInfo.processInfo.environment
        env["OMP_NUM_THREADS"] = "1"
        p.environment = env
        let errPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0,
                     "tools/parity.py exited \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self).suffix(2000))")

        let bundle = try ModelBundle.load(directory: bundleDir)
        let cases = try Self.readCases(Array(try Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(cases.count >= 1000)

        let updater = StateUpdater(bundle: bundle)
        let encoder = UserEncoder(bundle: bundle)
        var failures: [String] = []
        func fail(_ c: Case, _ m: String) { if failures.count < 20 { failures.append("line \(c.line) (user \(c.userId), \(c.kind)): \(m)") } }
        var maxX = 0.0, maxU = 0.0, maxS = 0.0
        var coverage: [String: Int] = [:]
        var contexts: [UserContext] = []

        for c in cases {
            var state: UserState?
            var latest = Int64.min
            for e in c.events {
                switch try updater.apply(e, to: &state) {
                case .applied: break
                case .appliedUnknownItem: coverage["unknown item", default: 0] += 1
                case .duplicate: coverage["duplicate", default: 0] += 1
                }
                if e.ts < latest { coverage["out of order", default: 0] += 1 }
                latest = max(latest, e.ts)
            }
            if state == nil { coverage["cold start", default: 0] += 1 }
            if let s = state, c.at < s.tLast { coverage["T before t_last", default: 0] += 1 }

            switch (state, c.state) {
            case (nil, nil): break
            case (nil, _?): fail(c, "Swift has no state, Python has one")
            case (_?, nil): fail(c, "Swift has a state, Python has none")
            case (let mine?, let theirs?):
                for (name, a, b) in [("S", mine.embeddingSum, theirs.embeddingSum), ("c", mine.categoryWeights, theirs.categoryWeights),
                                     ("n", mine.actionCounts, theirs.actionCounts)] {
                    guard a.count == b.count else { fail(c, "\(name) has \(a.count) values vs \(b.count)"); continue }
                    let scale = b.map(abs).max() ?? 0
                    for (k, (va, vb)) in zip(a, b).enumerated() {
                        let d = abs(va - vb)
                        maxS = max(maxS, d / max(abs(vb), 1e-300))
                        if d > 1e-9 * max(abs(va), abs(vb)) && d > 1e-15 * scale {
                            fail(c, "\(name)[\(k)] = \(va) vs \(vb)")
                            break
                        }
                    }
                }
                if mine.tLast != theirs.tLast { fail(c, "t_last \(mine.tLast) vs \(theirs.tLast)") }
                if mine.impressions != theirs.impressions { fail(c, "impressions \(mine.impressions) vs \(theirs.impressions)") }
                if mine.recentEventIds != theirs.recentEventIds { fail(c, "recent_event_ids \(mine.recentEventIds) vs \(theirs.recentEventIds)") }
                if mine.source != theirs.source { fail(c, "src \(String(describing: mine.source)) vs \(String(describing: theirs.source))") }
                if mine.userId != theirs.userId { fail(c, "user_id \(mine.userId) vs \(theirs.userId)") }
            }

            let x = encoder.features.build(state: state, at: c.at, device: c.device)
            if x.count != c.x.count {
                fail(c, "x has \(x.count) values vs \(c.x.count)")
            } else {
                let d = zip(x, c.x).map { abs(Double($0) - $1) }.max() ?? 0
                maxX = max(maxX, d)
                if d > 1e-6 { fail(c, "x differs by \(d) (max abs)") }
            }
            let u = encoder.embed(state: state, at: c.at, device: c.device)
            if u.count != c.u.count {
                fail(c, "u has \(u.count) values vs \(c.u.count)")
            } else {
                let d = zip(u, c.u).map { abs(Double($0) - $1) }.max() ?? 0
                maxU = max(maxU, d)
                if d > 1e-5 { fail(c, "u differs by \(d) (max abs)") }
            }
            contexts.append(UserContext(state: state, at: c.at, device: c.device))
        }

        // The batch path (sgemm) against the same reference.
        let batch = encoder.embedBatch(contexts)
        var maxBatchU = 0.0
        for (r, c) in cases.enumerated() where c.u.count == batch.columns {
            let d = zip(batch.row(r), c.u).map { abs(Double($0) - $1) }.max() ?? 0
            maxBatchU = max(maxBatchU, d)
            if d > 1e-5 { fail(c, "batch u differs by \(d) (max abs)") }
        }

        #expect(failures.isEmpty, "\(failures.count)+ mismatches:\n\(failures.joined(separator: "\n"))")
        // The cases must exercise the hard paths, or agreement proves little.
        for what in ["cold start", "out of order", "unknown item", "duplicate", "T before t_last"] {
            #expect(coverage[what, default: 0] > 0, "no parity case has: \(what)")
        }
        print("parity: \(cases.count) cases, max |Δx| \(maxX), max |Δu| \(maxU) (batch \(maxBatchU)), max rel ΔS/c/n \(maxS), coverage \(coverage.sorted { $0.key < $1.key })")
    }

    /// Parses parity.jsonl with the module's own JSON reader: events through
    /// `ActivityEvent.parse` and states through `UserState.decode` on their raw bytes.
    static func readCases(_ bytes: [UInt8]) throws -> [Case] {
        var cases: [Case] = []
        var lineNo = 0
        for lineSlice in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            let line = Array(lineSlice)
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0d }) { continue }
            let c: Case = try line.withUnsafeBufferPointer { buf in
                var r = JSONReader(buf)
                var c = Case()
                c.line = lineNo
                func raw(_ from: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: buf[from..<r.pos]) }
                var obj = try r.beginObject()
                while let key = try r.nextKey(&obj) {
                    if key.is("user_id") { c.userId = try r.readInt64(field: "user_id") }
                    else if key.is("kind") { c.kind = try r.readString(field: "kind") }
                    else if key.is("at") { c.at = try r.readInt64(field: "at") }
                    else if key.is("device") { c.device = try r.readNullIfPresent() ? nil : try r.readString(field: "device") }
                    else if key.is("x") || key.is("u") {
                        var v: [Double] = []
                        var arr = try r.beginArray()
                        while try r.nextElement(&arr) { v.append(try r.readDouble()) }
                        if key.is("x") { c.x = v } else { c.u = v }
                    } else if key.is("events") {
                        var arr = try r.beginArray()
                        while try r.nextElement(&arr) {
                            let start = r.pos
                            try r.skipValue()
                            c.events.append(try ActivityEvent.parse(raw(start)))
                        }
                    } else if key.is("state") {
                        if try !r.readNullIfPresent() {
                            let start = r.pos
                            try r.skipValue()
                            c.state = try UserState.decode(raw(start))
                        }
                    } else { try r.skipValue() }
                }
                return c
            }
            cases.append(c)
        }
        return cases
    }
}
