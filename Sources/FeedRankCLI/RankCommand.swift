import ArgumentParser
import Foundation
import LinearAlgebra
import Logging
import Ranking
import RankingModel

/// `feedrank rank`: offline ranking of one user (no Kafka, no Redis), the full pipeline.
struct RankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rank",
        abstract: "Rank one user offline and print the response JSON (contract section 1).")

    @Option(help: "Model bundle directory.") var bundle: String
    @Option(help: "user-activity records (JSON lines) to build the user's state from, applied in file order; other users' records are skipped.") var events: String?
    @Option(help: "The user id.") var user: Int64
    @Option(name: .customLong("num-items"), help: "List length, 1...500.") var numItems = 50
    @Option(help: "Ranking time T in ms since the epoch (default: now).") var at: Int64?
    @Option(help: "The request's device.") var device: String?
    @Flag(help: "Exact retrieval (every item scored) instead of the IVF-PQ index.") var exact = false
    @Flag(help: "Print the score components of the returned and the best dropped items to stderr.") var explain = false
    @Option(help: "IVF-PQ index file (default: built from the bundle).") var index: String?
    @Option(help: "Inverted lists probed per category.") var nprobe: Int?
    @Option(help: "Lists after a category's best are probed only within this probe-score margin (default 0.025; inf: all --nprobe).") var probeMargin: Double?
    @Option(help: "With an index ordered along its principal axis, a list stops at the first block this many standard deviations cannot lift into a category's top k (default 3.5; inf: whole lists).") var axisSlack: Double?

    func validate() throws {
        guard RankingRequest.numItemsRange.contains(numItems) else {
            throw ValidationError("--num-items \(numItems): must be in 1...500")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let logger = Logger(label: "feedrank.rank")
        BLAS.threadCount = 1
        let b = try CatalogLoader.loadBundle(bundle, logger: logger)
        var state: UserState?
        var applied = 0, unknown = 0
        if let events {
            guard let data = FileManager.default.contents(atPath: events) else { throw CLIError.usage("--events \(events): cannot read the file") }
            let updater = StateUpdater(bundle: b)
            var lineNo = 0
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                lineNo += 1
                if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
                let event: ActivityEvent
                do { event = try ActivityEvent.parse(Array(line)) } catch {
                    throw CLIError.usage("--events \(events):\(lineNo): \(error.message)")
                }
                guard event.userId == user else { continue }
                do {
                    switch try updater.apply(event, to: &state) {
                    case .applied: applied += 1
                    case .appliedUnknownItem: applied += 1; unknown += 1
                    case .duplicate: break
                    }
                } catch { throw CLIError.usage("--events \(events):\(lineNo): \(error.message)") }
            }
        }
        var retrieval = RetrievalSettings()
        if let nprobe { retrieval.nprobe = nprobe }
        if let probeMargin { retrieval.probeMargin = try ConfigSources.checkedProbeMargin(probeMargin) }
        if let axisSlack { retrieval.axisSlack = try ConfigSources.checkedAxisSlack(axisSlack) }
        let idx = exact ? nil : try CatalogLoader.loadIndex(index, bundle: b, logger: logger)
        let catalog = try CatalogLoader.catalog(bundle: b, index: idx, retrieval: retrieval)
        let ranker = FeedRanker(catalog: catalog)
        let t = at ?? Int64(Date().timeIntervalSince1970 * 1000)
        let started = ContinuousClock.now
        let out = ranker.rank(RankingInput(userId: user, state: state, at: t, device: device, numItems: numItems,
                                           mode: exact ? .exact : .index, explain: explain))
        let d = (ContinuousClock.now - started).components
        let response = RankingResponse(requestId: nil, userId: user, trigger: .request, items: out.items,
                                       latencyMs: Double(d.seconds) * 1000 + Double(d.attoseconds) / 1e15,
                                       modelVersion: b.manifest.modelVersion, coldStart: out.coldStart,
                                       generatedAt: Int64(Date().timeIntervalSince1970 * 1000),
                                       short: out.short, boundHit: out.boundHit)
        print(String(decoding: response.jsonBytes(), as: UTF8.self))
        if explain, let e = out.explanation {
            var text = "user \(user) at \(t): \(applied) events applied (\(unknown) unknown items), "
            text += out.coldStart ? "cold start\n" : "\(state?.impressions.count ?? 0) recent impressions\n"
            text += "retrieval \(exact ? "exact" : "IVF-PQ"), \(out.scoredCandidates) candidates scored exactly, \(out.expansions) extra search round(s)\n"
            text += "dropped by rule: " + DropReason.allCases.map { "\($0.rawValue)=\(out.counters[$0])" }.joined(separator: " ") + "\n"
            text += "\nreturned (rank, item, category, creator, dot, logit, sigmoid, boost, final, why):\n"
            for entry in e.returned { text += Self.line(entry, b) }
            text += "\nbest dropped or moved:\n"
            for entry in e.dropped { text += Self.line(entry, b) }
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    static func line(_ e: Explanation.Entry, _ b: ModelBundle) -> String {
        let c = e.candidate
        let cat = b.manifest.categories[Int(c.category)]
        let logit = Double(c.dot) / b.manifest.temperature + b.manifest.scoreBias
        return String(format: "  %4@ %10lld %-14@ %8lld %8.4f %8.3f %8.5f %4@ %8.5f  %@\n",
                      e.rank.map { "\($0)" } ?? "-", c.itemId, cat, c.creatorId, c.dot, logit, c.baseScore,
                      c.fresh ? "1.2" : "1", c.score, e.reason)
    }
}
