import ArgumentParser
import Foundation
import LinearAlgebra
import RankingModel

/// `feedrank-bench model --bundle DIR`: the RankingModel hot paths on one thread — state update
/// per event, features + tower per user (sgemv), per 1000-user batch (sgemm), state JSON coding,
/// exact re-scoring — as medians of repeated runs. Prints a table, then one JSON line.
struct ModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "RankingModel: bundle load, state update, features + user tower, state JSON, scoring.")

    @Option(help: "Model bundle directory.")
    var bundle: String

    @Option(help: "Users per run (states built from synthetic events).")
    var users = 1000

    @Option(help: "Events per user.")
    var eventsPerUser = 50

    @Option(help: "Timed repetitions of each measurement (the median is reported).")
    var repeats = 9

    @Option(help: "Bundle loads to time (the first may read from disk).")
    var loads = 3

    @Option(help: "Candidates per re-scoring run.")
    var candidates = 1000

    @Option(help: "Random seed for the synthetic events.")
    var seed: UInt64 = 7

    @Flag(help: "Time with the wall clock instead of the thread's CPU time.")
    var wallClock = false

    func validate() throws {
        guard users >= 1, eventsPerUser >= 1, repeats >= 1, loads >= 1, candidates >= 1 else {
            throw ValidationError("--users, --events-per-user, --repeats, --loads and --candidates must be >= 1")
        }
    }

    func run() throws {
        BLAS.threadCount = 1
        Self.useWallClock = wallClock
        var rows: [(String, Double, String)] = []

        var loadTimes: [Double] = []
        var loaded: ModelBundle?
        for _ in 0..<loads {
            loaded = nil
            let t = try Self.time { loaded = try ModelBundle.load(directory: bundle) }
            loadTimes.append(t)
        }
        let b = loaded!
        rows.append(("bundle load (\(b.itemCount) items, D=\(b.embeddingDimension))", Self.median(loadTimes) / 1e6, "ms"))

        let m = b.manifest
        var rng = SplitMix(seed: seed)
        let events = makeEvents(b, &rng)
        let updater = StateUpdater(bundle: b)

        // State update per event.
        var states: [UserState?] = []
        let perEvent = try Self.median((0..<repeats).map { _ in
            var fresh = [UserState?](repeating: nil, count: users)
            let t = try Self.time {
                for (u, ev) in events { _ = try updater.apply(ev, to: &fresh[u]) }
            }
            states = fresh
            return t / Double(events.count)
        })
        rows.append(("state update per event", perEvent, "ns"))

        let at = events.map(\.1.ts).max()! + 3_600_000
        let contexts = states.enumerated().map { i, s in
            UserContext(state: s, at: at + Int64(i), device: i % 4 == 3 ? nil : m.devices.isEmpty ? nil : m.devices[i % m.devices.count])
        }
        let encoder = UserEncoder(bundle: b)
        let d = m.embeddingDimension
        let f = m.featureCount
        var u = [Float](repeating: 0, count: d)
        var x = [Float](repeating: 0, count: f)

        let featuresOnly = Self.median((0..<repeats).map { _ in
            x.withUnsafeMutableBufferPointer { xb in
                Self.time { for c in contexts { encoder.features.build(state: c.state, at: c.at, device: c.device, into: xb) } }
            } / Double(users)
        })
        rows.append(("features per user", featuresOnly / 1e3, "µs"))

        let single = Self.median((0..<repeats).map { _ in
            u.withUnsafeMutableBufferPointer { ub in
                Self.time { for c in contexts { encoder.embed(c, into: ub) } }
            } / Double(users)
        })
        rows.append(("features + tower per user (sgemv)", single / 1e3, "µs"))

        let batchSize = 1000
        let batch = (0..<batchSize).map { contexts[$0 % contexts.count] }
        var out = [Float](repeating: 0, count: batchSize * d)
        out.withUnsafeMutableBufferPointer { encoder.embedBatch(batch, into: $0) }   // warm the buffers
        let perBatch = Self.median((0..<repeats).map { _ in
            out.withUnsafeMutableBufferPointer { ob in Self.time { encoder.embedBatch(batch, into: ob) } }
        })
        rows.append(("features + tower per 1000-user batch (sgemm)", perBatch / 1e6, "ms"))
        rows.append(("  = per user in the batch", perBatch / Double(batchSize) / 1e3, "µs"))

        let sample = states.compactMap { $0 }
        let encoded = sample.map { $0.jsonBytes() }
        let encode = Self.median((0..<repeats).map { _ in
            Self.time { for s in sample { _ = s.jsonBytes() } } / Double(sample.count)
        })
        let decode = try Self.median((0..<repeats).map { _ in
            try Self.time { for e in encoded { _ = try UserState.decode(e, manifest: m) } } / Double(sample.count)
        })
        let avgBytes = encoded.reduce(0) { $0 + $1.count } / max(1, encoded.count)
        rows.append(("state JSON encode (\(avgBytes) B avg)", encode / 1e3, "µs"))
        rows.append(("state JSON decode", decode / 1e3, "µs"))

        let scoring = Scoring(manifest: m)
        let candidateRows = (0..<candidates).map { _ in Int(rng.next() % UInt64(b.itemCount)) }
        var scores = [Double](repeating: 0, count: candidates)
        encoder.embed(contexts[0], into: u.withUnsafeMutableBufferPointer { $0 })
        let rescore = Self.median((0..<repeats).map { _ in
            scores.withUnsafeMutableBufferPointer { sb in
                Self.time { scoring.scores(user: u, rows: candidateRows, in: b, into: sb) }
            }
        })
        rows.append(("exact re-score of \(candidates) candidates", rescore / 1e3, "µs"))

        print("RankingModel benchmark — release, 1 BLAS thread, \(users) users × \(eventsPerUser) events, median of \(repeats), \(wallClock ? "wall clock" : "thread CPU time")")
        print("bundle: \(bundle) (model \(m.modelVersion), F=\(f), hidden \(m.hiddenSizes), D=\(d))")
        let width = rows.map(\.0.count).max()!
        for (name, value, unit) in rows {
            print(name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + String(format: "%10.3f %@", value, unit))
        }
        let json: [String: Any] = [
            "bench": "model", "clock": wallClock ? "wall" : "thread_cpu", "bundle": bundle, "items": b.itemCount, "embedding_dim": d, "features": f,
            "hidden": m.hiddenSizes, "users": users, "events": events.count, "repeats": repeats,
            "load_ms": Self.median(loadTimes) / 1e6,
            "state_update_ns_per_event": perEvent,
            "features_us_per_user": featuresOnly / 1e3,
            "features_tower_us_per_user": single / 1e3,
            "batch1000_ms": perBatch / 1e6,
            "batch1000_us_per_user": perBatch / Double(batchSize) / 1e3,
            "state_json_encode_us": encode / 1e3, "state_json_decode_us": decode / 1e3,
            "state_json_bytes": avgBytes,
            "rescore_us_per_\(candidates)": rescore / 1e3,
        ]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Synthetic activity: per user, events mostly in time order with ~5% out of order, ~2% on
    /// items outside the bundle, actions skewed towards impressions; interleaved across users.
    private func makeEvents(_ b: ModelBundle, _ rng: inout SplitMix) -> [(Int, ActivityEvent)] {
        let actions: [(Action, Int)] = [(.impression, 60), (.click, 15), (.like, 5), (.comment, 2), (.share, 2), (.dwell, 12), (.hide, 4)]
        let total = actions.reduce(0) { $0 + $1.1 }
        var clocks = (0..<users).map { _ in Int64(1_795_000_000_000) + Int64(rng.next() % 86_400_000) }
        var out: [(Int, ActivityEvent)] = []
        out.reserveCapacity(users * eventsPerUser)
        for k in 0..<eventsPerUser {
            for u in 0..<users {
                clocks[u] += Int64(rng.next() % 3_600_000)
                let ts = rng.next() % 20 == 0 ? clocks[u] - Int64(rng.next() % 36_000_000) : clocks[u]
                var pick = Int(rng.next() % UInt64(total))
                var action = Action.impression
                for (a, w) in actions { if pick < w { action = a; break }; pick -= w }
                let item = rng.next() % 50 == 0 ? Int64(-1 - Int64(rng.next() % 1000))
                                                : b.items[Int(rng.next() % UInt64(b.itemCount))].id
                out.append((u, ActivityEvent(eventId: "b-\(u)-\(k)", userId: Int64(u), itemId: item,
                                             action: action, ts: ts)))
            }
        }
        return out
    }

    /// Nanoseconds of this thread's CPU time spent in `body`. On a shared machine this is the
    /// figure that does not grow when other processes take the core; `wallClock` switches to
    /// elapsed time.
    private static func time(_ body: () throws -> Void) rethrows -> Double {
        let clock = useWallClock ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID
        var a = timespec(), b = timespec()
        clock_gettime(clock, &a)
        try body()
        clock_gettime(clock, &b)
        return Double(b.tv_sec - a.tv_sec) * 1e9 + Double(b.tv_nsec - a.tv_nsec)
    }

    nonisolated(unsafe) private static var useWallClock = false

    private static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// SplitMix64: a small deterministic generator for the synthetic events.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
