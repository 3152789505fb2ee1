import Metrics
import Ranking

/// The worker's metrics (swift-metrics API; the executable picks the Prometheus backend).
/// Names follow the seed service where it had them.
public struct WorkerMetrics: Sendable {
    public let rankingRequests = Counter(label: "ranking_requests_total")
    public let rankingLatency = Timer(label: "ranking_latency_seconds", preferredDisplayUnit: .seconds)
    public let rankingErrors = Counter(label: "ranking_errors_total")
    public let predictions = Counter(label: "predictions_total")
    public let itemsServed = Counter(label: "items_served_total")
    public let feedDiversity = Recorder(label: "feed_diversity_score")
    public let feedFreshness = Timer(label: "feed_freshness_seconds", preferredDisplayUnit: .seconds)
    public let eventsApplied = Counter(label: "feedrank_events_applied_total")
    public let eventsDuplicate = Counter(label: "feedrank_events_duplicate_total")
    public let eventsUnknownItem = Counter(label: "feedrank_events_unknown_item_total")
    public let refreshes = Counter(label: "feedrank_activity_reranks_total")
    /// User states written (user-state record + L4 + L2), one per changed user and processing batch.
    public let stateWrites = Counter(label: "feedrank_state_writes_total")
    public let redisFailures = Counter(label: "feedrank_redis_failures_total")
    public let produceRetries = Counter(label: "feedrank_produce_retries_total")
    public let searchBoundHits = Counter(label: "feedrank_search_bound_hits_total")
    public let inFlight = Gauge(label: "feedrank_in_flight_records")
    public let uncommitted = Gauge(label: "feedrank_uncommitted_records")

    /// One counter per rule, made once: making one per ranking went through the metrics
    /// factory's registry (a lock and a lookup) for every rule of every ranking.
    private let droppedByRule: [DropReason: Counter]

    public init() {
        droppedByRule = Dictionary(uniqueKeysWithValues: DropReason.allCases.map {
            ($0, Counter(label: "feedrank_items_dropped_total", dimensions: [("rule", $0.rawValue)]))
        })
    }

    public func cacheHit(_ type: String) { Counter(label: "cache_hits_total", dimensions: [("cache_type", type)]).increment() }
    public func cacheMiss(_ type: String) { Counter(label: "cache_misses_total", dimensions: [("cache_type", type)]).increment() }
    public func deadLetter(reason: String) { Counter(label: "feedrank_dlq_records_total", dimensions: [("reason", reason)]).increment() }
    public func dropped(_ rule: DropReason, _ n: Int) { droppedByRule[rule]!.increment(by: n) }
    public func lag(topic: String, partition: Int32, _ value: Int64) {
        Gauge(label: "feedrank_consumer_lag", dimensions: [("topic", topic), ("partition", String(partition))]).record(value)
    }
}
