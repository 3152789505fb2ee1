import Foundation
import Ranking
import RankingModel
import RedisClient
import Synchronization

/// Rankers for synchronous HTTP requests (each ranker has per-thread scratch; a request
/// borrows one).
final class HTTPRankers: @unchecked Sendable {
    private let catalog: RankingCatalog
    private let lock = NSLock()
    private var free: [FeedRanker] = []

    init(catalog: RankingCatalog) { self.catalog = catalog }

    func with<R>(_ body: (FeedRanker) -> R) -> R {
        lock.lock()
        let ranker = free.popLast() ?? FeedRanker(catalog: catalog)
        lock.unlock()
        defer { lock.lock(); free.append(ranker); lock.unlock() }
        return body(ranker)
    }
}

/// The answer to `POST /rank`.
public struct HTTPRankResult: Sendable {
    public var status: Int
    public var body: [UInt8]
}

extension StreamWorker {
    /// `POST /rank`, the real-time gateway: the same request JSON as the `ranking-requests`
    /// topic (context.ts defaults to server time), answered synchronously with the response
    /// JSON. The user's state comes from this member when it owns the user's partition, else
    /// from L4; the L1 rules apply as for Kafka requests, and a computed list is written to L1.
    public func rankHTTP(_ body: [UInt8]) async -> HTTPRankResult {
        let started = ContinuousClock.now
        let request: RankingRequest
        do {
            request = try RankingRequest.parse(body)
        } catch {
            metrics.rankingErrors.increment()
            let reply = RankingErrorResponse(requestId: error.requestId ?? "", userId: error.userId, error: error.message)
            return HTTPRankResult(status: 400, body: reply.jsonBytes())
        }
        metrics.rankingRequests.increment()
        let at = request.contextTs ?? Int64(Date().timeIntervalSince1970 * 1000)
        let context = contextForHTTP()
        var state = store.find(request.userId)?.state
        var cached: [UInt8]?
        if let context {
            var commands: [RedisCommand] = []
            if state == nil { commands.append(.get(CacheKeys.features(request.userId))) }
            if !request.fresh { commands.append(.get(CacheKeys.ranking(request.userId))) }
            if !commands.isEmpty, let replies = await context.sink.redisRead(commands) {
                var i = 0
                if state == nil {
                    if let b = try? replies[0].bytes() { state = try? UserState.decode(b, manifest: catalog.bundle.manifest) }
                    i = 1
                }
                if !request.fresh { cached = try? replies[i].bytes() }
            }
        }
        if let cached, let entry = try? RankingResponse.parse(cached),
           var answer = L1Policy.answer(cached: entry, request: request, state: state, at: at,
                                        modelVersion: catalog.bundle.manifest.modelVersion,
                                        impressionWindowMs: catalog.rules.impressionWindowMs) {
            answer.latencyMs = started.elapsedMilliseconds
            metrics.cacheHit("l1")
            return HTTPRankResult(status: 200, body: answer.jsonBytes())
        }
        if !request.fresh { metrics.cacheMiss("l1") }
        let out = http.with { ranker in
            ranker.rank(RankingInput(userId: request.userId, state: state, at: at, device: request.device,
                                     numItems: request.numItems))
        }
        let response = RankingResponse(requestId: request.requestId, userId: request.userId, trigger: .request,
                                       items: out.items, latencyMs: started.elapsedMilliseconds,
                                       modelVersion: catalog.bundle.manifest.modelVersion, coldStart: out.coldStart,
                                       generatedAt: Int64(Date().timeIntervalSince1970 * 1000),
                                       short: out.short, boundHit: out.boundHit)
        let bytes = response.jsonBytes()
        metrics.rankingLatency.recordNanoseconds(Int64(response.latencyMs * 1e6))
        if let context {
            context.recordRanking(out, response: response, cacheHit: false)
            context.sink.redisWrite([.set(CacheKeys.ranking(request.userId), bytes,
                                          expireSeconds: configuration.cache.rankingTTL)]) {}
            context.sink.flushRedis()
        }
        return HTTPRankResult(status: 200, body: bytes)
    }

    private func contextForHTTP() -> WorkerContext? { contextRefValue }
}
