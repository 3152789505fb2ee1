import RankingModel

/// What triggered a ranking (the response's `trigger`).
public enum RankingTrigger: String, Sendable {
    case request, activity, backfill
}

/// A `ranking-responses` record, also the JSON stored in the L1 cache (contract section 1).
public struct RankingResponse: Sendable, Equatable {
    public var requestId: String?
    public var userId: Int64
    public var trigger: RankingTrigger
    public var items: [RankedItem]
    public var latencyMs: Double
    public var modelVersion: String
    public var coldStart: Bool
    public var generatedAt: Int64
    /// FeedRank extensions (unknown fields are ignored by readers): the list is shorter than
    /// asked because the rules allow no more / the search bound was hit.
    public var short: Bool
    public var boundHit: Bool

    public init(requestId: String?, userId: Int64, trigger: RankingTrigger, items: [RankedItem], latencyMs: Double,
                modelVersion: String, coldStart: Bool, generatedAt: Int64, short: Bool = false, boundHit: Bool = false) {
        self.requestId = requestId
        self.userId = userId
        self.trigger = trigger
        self.items = items
        self.latencyMs = latencyMs
        self.modelVersion = modelVersion
        self.coldStart = coldStart
        self.generatedAt = generatedAt
        self.short = short
        self.boundHit = boundHit
    }

    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 96 + items.count * 96)
        w.raw("{\"status\":\"ok\",\"request_id\":")
        if let requestId { w.string(requestId) } else { w.raw("null") }
        w.raw(",\"user_id\":"); w.int(userId)
        w.raw(",\"trigger\":"); w.string(trigger.rawValue)
        w.raw(",\"items\":[")
        for (i, item) in items.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"item_id\":"); w.int(item.itemId)
            w.raw(",\"score\":"); w.double(item.score)
            w.raw(",\"rank\":"); w.int(Int64(item.rank))
            w.raw(",\"promoted\":"); w.raw(item.promoted ? "true" : "false")
            if !item.reasons.isEmpty {
                w.raw(",\"reasons\":[")
                for (j, r) in item.reasons.enumerated() { if j > 0 { w.raw(",") }; w.string(r) }
                w.raw("]")
            }
            w.raw("}")
        }
        w.raw("],\"latency_ms\":"); w.double((latencyMs * 1000).rounded() / 1000)
        w.raw(",\"model_version\":"); w.string(modelVersion)
        w.raw(",\"cold_start\":"); w.raw(coldStart ? "true" : "false")
        w.raw(",\"generated_at\":"); w.int(generatedAt)
        if short { w.raw(",\"short\":true") }
        if boundHit { w.raw(",\"bound_hit\":true") }
        w.raw("}")
        return w.bytes
    }

    /// Parses a response (an L1 entry, or a consumer reading the response topic).
    public static func parse(_ bytes: [UInt8]) throws(RankingError) -> RankingResponse {
        do {
            return try bytes.withUnsafeBufferPointer { (buf) throws(JSONProblem) -> RankingResponse in
                var r = JSONReader(buf)
                var requestId: String?, userId: Int64?, trigger: RankingTrigger?, items: [RankedItem] = []
                var latency = 0.0, version: String?, cold = false, generated: Int64?, short = false, bound = false
                var status: String?
                var obj = try r.beginObject()
                while let key = try r.nextKey(&obj) {
                    if key.is("status") { status = try r.readString(field: "status") }
                    else if key.is("request_id") { if try !r.readNullIfPresent() { requestId = try r.readString(field: "request_id") } }
                    else if key.is("user_id") { userId = try r.readInt64(field: "user_id") }
                    else if key.is("trigger") {
                        let t = try r.readString(field: "trigger")
                        guard let tr = RankingTrigger(rawValue: t) else { throw r.invalid("trigger", "unknown trigger \(t)") }
                        trigger = tr
                    } else if key.is("items") {
                        var arr = try r.beginArray(field: "items")
                        while try r.nextElement(&arr) {
                            var it = try r.beginObject(field: "items[]")
                            var item = RankedItem(itemId: 0, score: 0, rank: 0, promoted: false)
                            while let k = try r.nextKey(&it) {
                                if k.is("item_id") { item.itemId = try r.readInt64(field: "item_id") }
                                else if k.is("score") { item.score = try r.readDouble(field: "score") }
                                else if k.is("rank") { item.rank = Int(try r.readInt64(field: "rank")) }
                                else if k.is("promoted") { item.promoted = try r.readBool(field: "promoted") }
                                else if k.is("reasons") {
                                    var ra = try r.beginArray(field: "reasons")
                                    while try r.nextElement(&ra) { item.reasons.append(try r.readString(field: "reasons[]")) }
                                } else { try r.skipValue() }
                            }
                            items.append(item)
                        }
                    }
                    else if key.is("latency_ms") { latency = try r.readDouble(field: "latency_ms") }
                    else if key.is("model_version") { version = try r.readString(field: "model_version") }
                    else if key.is("cold_start") { cold = try r.readBool(field: "cold_start") }
                    else if key.is("generated_at") { generated = try r.readInt64(field: "generated_at") }
                    else if key.is("short") { short = try r.readBool(field: "short") }
                    else if key.is("bound_hit") { bound = try r.readBool(field: "bound_hit") }
                    else { try r.skipValue() }
                }
                try r.expectEnd()
                guard status == "ok" else { throw r.invalid("status", "expected \"ok\", got \(status ?? "nothing")") }
                guard let userId else { throw r.invalid("user_id", "missing") }
                guard let trigger else { throw r.invalid("trigger", "missing") }
                guard let version else { throw r.invalid("model_version", "missing") }
                guard let generated else { throw r.invalid("generated_at", "missing") }
                return RankingResponse(requestId: requestId, userId: userId, trigger: trigger, items: items,
                                       latencyMs: latency, modelVersion: version, coldStart: cold,
                                       generatedAt: generated, short: short, boundHit: bound)
            }
        } catch {
            // The body throws JSONProblem only (typed throws).
            throw RankingError("ranking response: \(error.text)")
        }
    }
}

/// The error reply a caller gets for a bad request that carried a request_id.
public struct RankingErrorResponse: Sendable, Equatable {
    public var requestId: String
    public var userId: Int64?
    public var error: String

    public init(requestId: String, userId: Int64?, error: String) {
        self.requestId = requestId
        self.userId = userId
        self.error = error
    }

    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 128)
        w.raw("{\"status\":\"error\",\"request_id\":"); w.string(requestId)
        w.raw(",\"user_id\":")
        if let userId { w.int(userId) } else { w.raw("null") }
        w.raw(",\"error\":"); w.string(error)
        w.raw("}")
        return w.bytes
    }
}
