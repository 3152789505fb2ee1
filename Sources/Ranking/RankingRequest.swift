import RankingModel

/// A `ranking-requests` record (contract section 1).
public struct RankingRequest: Sendable, Equatable {
    public static let defaultNumItems = 50
    public static let numItemsRange = 1...500

    public var requestId: String
    public var userId: Int64
    public var numItems: Int
    /// context.ts; nil: use the record's timestamp (server time on HTTP).
    public var contextTs: Int64?
    public var device: String?
    /// context.fresh: bypass the L1 ranking cache.
    public var fresh: Bool
    public var replyTo: String?

    public init(requestId: String, userId: Int64, numItems: Int = RankingRequest.defaultNumItems,
                contextTs: Int64? = nil, device: String? = nil, fresh: Bool = false, replyTo: String? = nil) {
        self.requestId = requestId
        self.userId = userId
        self.numItems = numItems
        self.contextTs = contextTs
        self.device = device
        self.fresh = fresh
        self.replyTo = replyTo
    }

    /// A request that failed validation, with what could still be read of it (so the caller
    /// can send an error response when a request_id is present).
    public struct Invalid: Error, Sendable, Equatable {
        public var message: String
        public var requestId: String?
        public var userId: Int64?
        /// The reply topic, when it could be read (the error response goes there).
        public var replyTo: String?
    }

    /// Parses and validates. Unknown fields are ignored.
    public static func parse(_ bytes: [UInt8]) throws(Invalid) -> RankingRequest {
        var requestId: String?, userId: Int64?, replyTo: String?
        do {
            return try bytes.withUnsafeBufferPointer { (buf) throws(JSONProblem) -> RankingRequest in
                var r = JSONReader(buf)
                var numItems: Int64?, ts: Int64?, device: String?, fresh = false
                var obj = try r.beginObject()
                while let key = try r.nextKey(&obj) {
                    if key.is("request_id") { requestId = try r.readString(field: "request_id") }
                    else if key.is("user_id") { userId = try r.readInt64(field: "user_id") }
                    else if key.is("num_items") { if try !r.readNullIfPresent() { numItems = try r.readInt64(field: "num_items") } }
                    else if key.is("reply_to") { if try !r.readNullIfPresent() { replyTo = try r.readString(field: "reply_to") } }
                    else if key.is("context") {
                        if try r.readNullIfPresent() { continue }
                        var ctx = try r.beginObject(field: "context")
                        while let ck = try r.nextKey(&ctx) {
                            if ck.is("ts") { if try !r.readNullIfPresent() { ts = try r.readInt64(field: "context.ts") } }
                            else if ck.is("device") { if try !r.readNullIfPresent() { device = try r.readString(field: "context.device") } }
                            else if ck.is("fresh") { if try !r.readNullIfPresent() { fresh = try r.readBool(field: "context.fresh") } }
                            else { try r.skipValue() }
                        }
                    } else { try r.skipValue() }
                }
                try r.expectEnd()
                guard let rid = requestId else { throw r.invalid("request_id", "missing") }
                guard !rid.isEmpty else { throw r.invalid("request_id", "must not be empty") }
                guard let uid = userId else { throw r.invalid("user_id", "missing") }
                let n = numItems ?? Int64(defaultNumItems)
                guard n >= Int64(numItemsRange.lowerBound) && n <= Int64(numItemsRange.upperBound) else {
                    throw r.invalid("num_items", "must be in \(numItemsRange.lowerBound)...\(numItemsRange.upperBound), got \(n)")
                }
                if let ts, ts < 0 { throw r.invalid("context.ts", "must be milliseconds since the epoch (>= 0), got \(ts)") }
                if let replyTo, replyTo.isEmpty { throw r.invalid("reply_to", "must not be empty") }
                return RankingRequest(requestId: rid, userId: uid, numItems: Int(n), contextTs: ts, device: device,
                                      fresh: fresh, replyTo: replyTo)
            }
        } catch {
            // The body throws JSONProblem only (typed throws).
            throw Invalid(message: "ranking-requests record: \(error.text)", requestId: requestId, userId: userId,
                          replyTo: replyTo.flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 160)
        w.raw("{\"request_id\":"); w.string(requestId)
        w.raw(",\"user_id\":"); w.int(userId)
        w.raw(",\"num_items\":"); w.int(Int64(numItems))
        w.raw(",\"context\":{")
        var first = true
        if let contextTs { w.raw("\"ts\":"); w.int(contextTs); first = false }
        if let device { if !first { w.raw(",") }; w.raw("\"device\":"); w.string(device); first = false }
        if !first { w.raw(",") }
        w.raw("\"fresh\":"); w.raw(fresh ? "true" : "false")
        w.raw("}")
        if let replyTo { w.raw(",\"reply_to\":"); w.string(replyTo) }
        w.raw("}")
        return w.bytes
    }
}
