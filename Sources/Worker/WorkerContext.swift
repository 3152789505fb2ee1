import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel

/// What the lanes share: configuration, the catalogue, the user states, the commit tracker and
/// the output sink, plus the response/DLQ/metrics helpers every path uses the same way.
final class WorkerContext: Sendable {
    let config: WorkerConfiguration
    let catalog: RankingCatalog
    let store: StateStore
    let tracker: CommitTracker
    let sink: OutputSink
    let metrics: WorkerMetrics
    let logger: Logger

    init(config: WorkerConfiguration, catalog: RankingCatalog, store: StateStore, tracker: CommitTracker,
         sink: OutputSink, metrics: WorkerMetrics, logger: Logger) {
        self.config = config
        self.catalog = catalog
        self.store = store
        self.tracker = tracker
        self.sink = sink
        self.metrics = metrics
        self.logger = logger
    }

    var modelVersion: String { catalog.bundle.manifest.modelVersion }

    /// Sends a record that cannot be processed to the DLQ unchanged, with the reason in its
    /// headers, and (for a request that carried a request_id) an error response, so no
    /// caller waits forever. The input completes when both are acknowledged.
    func deadLetter(_ record: KafkaRecord, reason: String, message: String,
                    errorResponse: (requestId: String, userId: Int64?, replyTo: String?)?) {
        let tp = record.topicPartition
        metrics.deadLetter(reason: reason)
        logger.warning("dead-lettered \(record.topic)[\(record.partition)]@\(record.offset): \(message)")
        let headers = [
            KafkaHeader(key: "error", string: message),
            KafkaHeader(key: "source_topic", string: record.topic),
            KafkaHeader(key: "source_partition", string: String(record.partition)),
            KafkaHeader(key: "source_offset", string: String(record.offset)),
        ]
        tracker.addOutputs(tp, record.offset, errorResponse == nil ? 1 : 2)
        sink.produce(OutgoingRecord(topic: config.topics.deadLetter, key: record.key, value: record.value,
                                    headers: headers)) { [self] _ in tracker.complete(tp, record.offset) }
        if let e = errorResponse {
            let body = RankingErrorResponse(requestId: e.requestId, userId: e.userId, error: message).jsonBytes()
            sink.produce(OutgoingRecord(topic: e.replyTo ?? config.topics.responses, key: record.key, value: body)) { [self] _ in
                tracker.complete(tp, record.offset)
            }
        }
        tracker.complete(tp, record.offset)
    }

    func response(for out: RankingOutput, requestId: String?, userId: Int64, trigger: RankingTrigger,
                  started: ContinuousClock.Instant, at: Int64) -> RankingResponse {
        RankingResponse(requestId: requestId, userId: userId, trigger: trigger, items: out.items,
                        latencyMs: started.elapsedMilliseconds, modelVersion: modelVersion, coldStart: out.coldStart,
                        generatedAt: Int64(Date().timeIntervalSince1970 * 1000), short: out.short, boundHit: out.boundHit)
    }

    /// Metrics and the log line of one computed ranking.
    func recordRanking(_ out: RankingOutput, response: RankingResponse, cacheHit: Bool) {
        metrics.predictions.increment(by: out.scoredCandidates)
        metrics.itemsServed.increment(by: out.items.count)
        if !out.items.isEmpty {
            let items = catalog.bundle
            let categories = Set(out.items.compactMap { items.item(id: $0.itemId)?.category })
            metrics.feedDiversity.record(Double(categories.count) / Double(out.items.count))
        }
        for (rule, n) in out.counters.counts where n > 0 { metrics.dropped(rule, n) }
        if out.boundHit { metrics.searchBoundHits.increment() }
        logRanking(response, numItems: out.items.count, cacheHit: cacheHit)
    }

    func logRanking(_ r: RankingResponse, numItems: Int, cacheHit: Bool) {
        logger.info("ranked", metadata: [
            "user_id": "\(r.userId)", "num_items": "\(numItems)", "latency_ms": "\(r.latencyMs)",
            "cache_hit": "\(cacheHit)", "model_version": "\(r.modelVersion)", "trigger": "\(r.trigger.rawValue)",
            "request_id": "\(r.requestId ?? "null")",
        ])
    }
}
