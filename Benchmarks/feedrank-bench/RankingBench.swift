import ArgumentParser
import Foundation
import LinearAlgebra
import Ranking
import RankingModel
import VectorIndex
import Worker

/// In-process ranking latency and throughput (one thread), with the time breakdown and the
/// overlap of the IVF-PQ lists with the exact lists.
struct RankingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranking", abstract: "Rankings/s, p50/p99 and breakdown on one thread; overlap@N with --exact.")

    @Option(help: "Model bundle.") var bundle: String
    @Option(help: "user-activity records (JSON lines) to build user states from.") var events: String?
    @Option(help: "Users to rank (the first N user ids with events; the rest of the run cycles through them).") var users = 1000
    @Option(help: "Cold-start users added to the set.") var coldUsers = 50
    @Option(name: .customLong("num-items")) var numItems = 50
    @Option(help: "T in ms (default: the latest event's ts + 1 h).") var at: Int64?
    @Option(help: "Also rank at T + this many days (no item fresh when large).") var laterDays = 0
    @Option(help: "IVF-PQ index file (default: built from the bundle).") var index: String?
    @Option var nprobe: Int?
    @Option(help: "Probe-score margin for the lists after a category's best (inf: all --nprobe).") var probeMargin: Double?
    @Option(help: "Axis slack of ordered indexes (inf: whole lists).") var axisSlack: Double?
    @Option(name: .customLong("candidates")) var candidates: Int?
    @Option(name: .customLong("scored-first"), help: "Index candidates per category scored exactly before the selection (default: RetrievalSettings').") var scoredFirst: Int?
    @Option(name: .customLong("fresh-scored-first"), help: "Fresh candidates per category scored exactly before the selection (default: RetrievalSettings').") var freshScoredFirst: Int?
    @Option(name: .customLong("fresh-per-category"), help: "Fresh candidates per category (default: RetrievalSettings').") var freshPerCategory: Int?
    @Option(help: "Timed rankings (cycling through the users).") var rankings = 5000
    @Option(help: "Users whose index lists are compared with exact lists (0: skip).") var overlapUsers = 1000
    @Option(help: "Write the JSON summary here too.") var json: String?
    @Option(name: .customLong("batch-users"), help: "Also rank this many users (cycling through the set) through the batch path (BatchRanker: batches of 1,000, sgemm tower, shared first round) at each T (0: skip).")
    var batchUsers = 0
    @Option(name: .customLong("batch-threads"), help: "Threads of the batch path.") var batchThreads = 1
    @Option(name: .customLong("batch-size"), help: "Users per batch of the batch path.") var batchSize = 1000

    func run() async throws {
        BLAS.threadCount = 1
        let b = try ModelBundle.load(directory: bundle)
        var states: [Int64: UserState] = [:]
        var latest: Int64 = 0
        if let events {
            guard let data = FileManager.default.contents(atPath: events) else { throw ValidationError("cannot read \(events)") }
            let updater = StateUpdater(bundle: b)
            var chosen = Set<Int64>()
            var optionals: [Int64: UserState?] = [:]
            for line in data.split(separator: UInt8(ascii: "\n")) {
                guard let e = try? ActivityEvent.parse(Array(line)) else { continue }
                latest = max(latest, e.ts)
                if !chosen.contains(e.userId) {
                    if chosen.count >= users { continue }
                    chosen.insert(e.userId)
                }
                var s = optionals[e.userId] ?? nil
                _ = try updater.apply(e, to: &s)
                optionals[e.userId] = s
            }
            states = optionals.compactMapValues { $0 }
        }
        let t0 = at ?? (latest > 0 ? latest + 3_600_000 : Int64(Date().timeIntervalSince1970 * 1000))
        let buildStart = ContinuousClock.now
        let idx: IVFPQIndex
        if let index { idx = try IVFPQIndex.load(from: index, expectedDimension: b.embeddingDimension) } else {
            idx = try RankingIndexBuilder.build(bundle: b)
        }
        let buildSecs = (ContinuousClock.now - buildStart).seconds
        var retrieval = RetrievalSettings()
        if let nprobe { retrieval.nprobe = nprobe }
        if let probeMargin { retrieval.probeMargin = Float(probeMargin) }
        if let axisSlack { retrieval.axisSlack = Float(axisSlack) }
        if let candidates { retrieval.candidatesPerCategory = candidates }
        if let freshPerCategory { retrieval.freshPerCategory = freshPerCategory }
        if let scoredFirst { retrieval.scoredFirst = scoredFirst }
        if let freshScoredFirst { retrieval.freshScoredFirst = freshScoredFirst }
        let catalog = try RankingCatalog(bundle: b, index: idx, retrieval: retrieval)
        let ranker = FeedRanker(catalog: catalog)
        var inputs: [(Int64, UserState?)] = states.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let maxUser = inputs.map(\.0).max() ?? 0
        for i in 0..<coldUsers { inputs.append((maxUser + 1 + Int64(i), nil)) }
        let devices = ["ios", "android", "web"]
        print("bundle \(b.itemCount) items (\(catalog.promotedRows.count) promoted), index IVF\(idx.nlist) \(idx.count) items (\(String(format: "%.1f", buildSecs)) s to \(index == nil ? "build" : "load")), \(states.count) users with state + \(coldUsers) cold")

        var results: [[String: Any]] = []
        for (label, at) in [("T", t0)] + (laterDays > 0 ? [("T+\(laterDays)d", t0 + Int64(laterDays) * 86_400_000)] : []) {
            let fresh = b.items.filter { at - $0.publishedAt >= 0 && at - $0.publishedAt < 86_400_000 }.count
            func input(_ i: Int, _ mode: RetrievalMode) -> RankingInput {
                let (user, state) = inputs[i % inputs.count]
                return RankingInput(userId: user, state: state, at: at, device: devices[i % 3], numItems: numItems, mode: mode)
            }
            for i in 0..<min(200, rankings) { _ = ranker.rank(input(i, .index)) }  // warm-up
            var lat: [Double] = []
            lat.reserveCapacity(rankings)
            var parts = RankingTimings()
            var short = 0, bound = 0, expansions = 0
            ranker.resetSearchStatistics()
            let start = ContinuousClock.now
            for i in 0..<rankings {
                let s = ContinuousClock.now
                let out = ranker.rank(input(i, .index))
                lat.append((ContinuousClock.now - s).seconds * 1000)
                parts.tower += out.timings.tower; parts.retrieval += out.timings.retrieval
                parts.rescore += out.timings.rescore; parts.rules += out.timings.rules
                if out.short { short += 1 }
                if out.boundHit { bound += 1 }
                expansions += out.expansions
            }
            let secs = (ContinuousClock.now - start).seconds
            let work = ranker.searchStatistics
            lat.sort()
            func q(_ f: Double) -> Double { lat[min(lat.count - 1, Int(Double(lat.count) * f))] }
            let n = Double(rankings)
            var overlap = Double.nan
            if overlapUsers > 0 {
                var total = 0.0
                let m = min(overlapUsers, inputs.count)
                for i in 0..<m {
                    let approx = Set(ranker.rank(input(i, .index)).items.map(\.itemId))
                    let exact = ranker.rank(input(i, .exact)).items.map(\.itemId)
                    total += exact.isEmpty ? 1 : Double(exact.filter(approx.contains).count) / Double(exact.count)
                }
                overlap = total / Double(m)
            }
            let r: [String: Any] = [
                "scenario": label, "at": at, "fresh_items": fresh, "rankings_per_s": n / secs,
                "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lat.last!,
                "tower_us": Double(parts.tower) / n / 1000, "retrieval_us": Double(parts.retrieval) / n / 1000,
                "rescore_us": Double(parts.rescore) / n / 1000, "rules_us": Double(parts.rules) / n / 1000,
                "short_lists": short, "bound_hits": bound, "expansion_rounds_per_ranking": Double(expansions) / n,
                "overlap_at_num_items": overlap.isNaN ? NSNull() : overlap as Any,
                "lists_scanned_per_ranking": Double(work.listsScanned) / n,
                "entries_scanned_per_ranking": Double(work.entriesScanned) / n,
            ]
            var r2 = r
            if batchUsers > 0 {
                let jobs = (0..<batchUsers).map { i -> RankJob in
                    let (user, state) = inputs[i % inputs.count]
                    return RankJob(userId: user, state: state, device: devices[i % 3])
                }
                let batcher = BatchRanker(catalog: catalog, threads: batchThreads, batchSize: batchSize, numItems: numItems)
                let bs = ContinuousClock.now
                _ = await batcher.run(jobs, at: at) { _, release in release() }
                let rate = Double(batchUsers) / (ContinuousClock.now - bs).seconds
                r2["batch_users_per_s"] = rate
                print(String(format: "%@: batch path %.0f users/s (%d users, %d thread(s), batches of %d)", label, rate, batchUsers, batchThreads, batchSize))
            }
            results.append(r2)
            print(String(format: "%@: %d fresh items; %.0f rankings/s, p50 %.3f ms, p99 %.3f ms; tower %.1f µs, retrieval %.1f µs, re-score %.1f µs, rules %.1f µs; overlap@%d with exact %.4f; %d short, %d bound hits; %.0f list scans, %.0f entries per ranking",
                         label, fresh, n / secs, q(0.5), q(0.99), r["tower_us"] as! Double, r["retrieval_us"] as! Double,
                         r["rescore_us"] as! Double, r["rules_us"] as! Double, numItems, overlap, short, bound,
                         Double(work.listsScanned) / n, Double(work.entriesScanned) / n))
        }
        let out: [String: Any] = ["bench": "ranking", "items": b.itemCount, "nlist": idx.nlist, "nprobe": retrieval.nprobe, "probe_margin": retrieval.probeMargin.isFinite ? Double(retrieval.probeMargin) as Any : "inf",
                                  "candidates_per_category": retrieval.candidatesPerCategory, "fresh_per_category": retrieval.freshPerCategory, "scored_first": retrieval.scoredFirst, "fresh_scored_first": retrieval.freshScoredFirst, "num_items": numItems,
                                  "users": inputs.count, "scenarios": results]
        let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        if let json { try data.write(to: URL(fileURLWithPath: json)) }
    }
}
