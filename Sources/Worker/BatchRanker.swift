import Dispatch
import Foundation
import Ranking
import RankingModel

/// One user for a batch ranking.
public struct RankJob: Sendable {
    public var userId: Int64
    public var state: UserState?
    public var device: String?

    public init(userId: Int64, state: UserState?, device: String? = nil) {
        self.userId = userId
        self.state = state
        self.device = device
    }
}

/// A ranked batch: one response JSON (trigger "backfill") per user, in the batch's order.
public struct RankedBatch: Sendable {
    public var index: Int
    public var users: [Int64]
    public var responses: [[UInt8]]
    public var short = 0
    public var boundHits = 0
    public var coldStarts = 0
}

/// Ranks many users the way batch jobs should: users in batches whose embeddings come from one
/// sgemm per tower layer (`UserEncoder.embedBatch`) and whose fresh and promoted candidates come
/// from one sgemm per category (`BatchSourcePicks`), then the full pipeline per user
/// (`FeedRanker.rank(_:userEmbedding:picks:)`: index search, exact re-scoring, rules), on `threads`
/// threads that each own an encoder and a ranker and take whole batches.
public final class BatchRanker: Sendable {
    public let catalog: RankingCatalog
    public let threads: Int
    public let batchSize: Int
    public let numItems: Int

    public init(catalog: RankingCatalog, threads: Int, batchSize: Int, numItems: Int) {
        self.catalog = catalog
        self.threads = max(1, threads)
        self.batchSize = max(1, batchSize)
        self.numItems = numItems
    }

    public func batchCount(_ users: Int) -> Int { (users + batchSize - 1) / batchSize }

    /// Ranks `jobs` at time `at`. `deliver` runs on the ranking thread with each batch and must
    /// call `release` once the batch's outputs are safe; at most two batches per thread are
    /// unreleased at a time (backpressure). Batches start in index order; `shouldStop` is
    /// checked before each. Returns the number of batches delivered.
    public func run(_ jobs: [RankJob], at: Int64,
                    deliver: @escaping @Sendable (RankedBatch, _ release: @escaping @Sendable () -> Void) -> Void,
                    shouldStop: @escaping @Sendable () -> Bool = { false }) async -> Int {
        let total = batchCount(jobs.count)
        guard total > 0 else { return 0 }
        let next = SharedCounter()
        let delivered = SharedCounter()
        let inFlight = DispatchSemaphore(value: 2 * threads)
        let group = DispatchGroup()
        for t in 0..<min(threads, total) {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                rankLoop(jobs, at: at, total: total, next: next, inFlight: inFlight, shouldStop: shouldStop) { batch in
                    delivered.add()
                    deliver(batch) { inFlight.signal() }
                }
            }
            thread.name = "feedrank-batch-\(t)"
            thread.stackSize = 8 << 20
            thread.start()
        }
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { cont.resume() }
        }
        return Int(delivered.current)
    }

    private func rankLoop(_ jobs: [RankJob], at: Int64, total: Int, next: SharedCounter, inFlight: DispatchSemaphore,
                          shouldStop: () -> Bool, deliver: (RankedBatch) -> Void) {
        let encoder = UserEncoder(bundle: catalog.bundle)
        let ranker = FeedRanker(catalog: catalog)
        let sources = BatchSourcePicks(catalog: catalog, at: at)
        let d = catalog.bundle.embeddingDimension
        let modelVersion = catalog.bundle.manifest.modelVersion
        var u = [Float](repeating: 0, count: batchSize * d)
        while !shouldStop() {
            let b = Int(next.add())
            guard b < total else { return }
            inFlight.wait()
            if shouldStop() { inFlight.signal(); return }
            let range = (b * batchSize)..<min(jobs.count, (b + 1) * batchSize)
            let started = ContinuousClock.now
            let contexts = range.map { UserContext(state: jobs[$0].state, at: at, device: jobs[$0].device) }
            u.withUnsafeMutableBufferPointer { encoder.embedBatch(contexts, into: $0) }
            let inputs = range.map { RankingInput(userId: jobs[$0].userId, state: jobs[$0].state, at: at,
                                                  device: jobs[$0].device, numItems: numItems) }
            // The fresh and promoted sources for the whole batch: one sgemm per category.
            let picks = u.withUnsafeBufferPointer { ub in sources?.picks(for: inputs, embeddings: ub) }
            let sharedMs = started.elapsedMilliseconds / Double(range.count)
            var batch = RankedBatch(index: b, users: [], responses: [])
            batch.users.reserveCapacity(range.count)
            batch.responses.reserveCapacity(range.count)
            u.withUnsafeBufferPointer { ub in
                for (i, j) in range.enumerated() {
                    let job = jobs[j]
                    let t0 = ContinuousClock.now
                    let out = ranker.rank(inputs[i], userEmbedding: UnsafeBufferPointer(rebasing: ub[(i * d)..<((i + 1) * d)]),
                                          picks: picks?[i])
                    let response = RankingResponse(
                        requestId: nil, userId: job.userId, trigger: .backfill, items: out.items,
                        latencyMs: t0.elapsedMilliseconds + sharedMs, modelVersion: modelVersion,
                        coldStart: out.coldStart, generatedAt: Int64(Date().timeIntervalSince1970 * 1000),
                        short: out.short, boundHit: out.boundHit)
                    batch.users.append(job.userId)
                    batch.responses.append(response.jsonBytes())
                    if out.short { batch.short += 1 }
                    if out.boundHit { batch.boundHits += 1 }
                    if out.coldStart { batch.coldStarts += 1 }
                }
            }
            deliver(batch)
        }
    }
}
