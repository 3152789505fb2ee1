/// A `user-activity` record (contract section 1).
public struct ActivityEvent: Sendable, Equatable {
    public var eventId: String
    public var userId: Int64
    public var itemId: Int64
    public var action: Action
    /// Milliseconds since the epoch.
    public var ts: Int64
    public var dwellMs: Int64?

    public init(eventId: String, userId: Int64, itemId: Int64, action: Action, ts: Int64, dwellMs: Int64? = nil) {
        self.eventId = eventId
        self.userId = userId
        self.itemId = itemId
        self.action = action
        self.ts = ts
        self.dwellMs = dwellMs
    }

    /// Parses and validates a record. Unknown fields are ignored. The error message names the
    /// field at fault ("user-activity record: field 'ts': expected an integer, got a string"),
    /// ready for the DLQ's `error` header.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ModelError) -> ActivityEvent {
        try parse(bytes.bindMemory(to: UInt8.self))
    }

    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(ModelError) -> ActivityEvent {
        do {
            var r = JSONReader(bytes)
            return try parse(&r)
        } catch {
            throw ModelError(.invalidEvent, "user-activity record: \(error.text)")
        }
    }

    public static func parse(_ bytes: [UInt8]) throws(ModelError) -> ActivityEvent {
        try bytes.withUnsafeBufferPointer { (buf) throws(ModelError) -> ActivityEvent in try parse(buf) }
    }

    public static func parse(_ text: String) throws(ModelError) -> ActivityEvent { try parse(Array(text.utf8)) }

    private static func parse(_ r: inout JSONReader) throws(JSONProblem) -> ActivityEvent {
        var eventId: String?, userId: Int64?, itemId: Int64?, action: Action?, ts: Int64?, dwell: Int64?
        var obj = try r.beginObject()
        while let key = try r.nextKey(&obj) {
            if key.is("event_id") { eventId = try r.readString(field: "event_id") }
            else if key.is("user_id") { userId = try r.readInt64(field: "user_id") }
            else if key.is("item_id") { itemId = try r.readInt64(field: "item_id") }
            else if key.is("ts") { ts = try r.readInt64(field: "ts") }
            else if key.is("action") {
                let (raw, decoded) = try r.readStringBytes(field: "action")
                action = decoded.flatMap(Action.init(rawValue:)) ?? (decoded == nil ? Action.parse(raw) : nil)
                guard action != nil else {
                    let name = decoded ?? String(decoding: raw, as: UTF8.self)
                    throw r.invalid("action", "unknown action \"\(name)\" (expected one of \(Action.namesList))")
                }
            } else if key.is("dwell_ms") {
                if try !r.readNullIfPresent() {
                    let d = try r.readInt64(field: "dwell_ms")
                    guard d >= 0 else { throw r.invalid("dwell_ms", "must be a non-negative integer, got \(d)") }
                    dwell = d
                }
            } else { try r.skipValue() }
        }
        try r.expectEnd()
        guard let eventId else { throw r.invalid("event_id", "missing") }
        guard !eventId.isEmpty else { throw r.invalid("event_id", "must not be empty") }
        guard let userId else { throw r.invalid("user_id", "missing") }
        guard let itemId else { throw r.invalid("item_id", "missing") }
        guard let action else { throw r.invalid("action", "missing") }
        guard let ts else { throw r.invalid("ts", "missing") }
        guard ts >= 0 else { throw r.invalid("ts", "must be milliseconds since the epoch (>= 0), got \(ts)") }
        return ActivityEvent(eventId: eventId, userId: userId, itemId: itemId, action: action, ts: ts, dwellMs: dwell)
    }

    /// The record as compact JSON (tests, replay tools, fixtures).
    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 128)
        w.raw("{\"event_id\":")
        w.string(eventId)
        w.raw(",\"user_id\":")
        w.int(userId)
        w.raw(",\"item_id\":")
        w.int(itemId)
        w.raw(",\"action\":\"")
        w.bytes.append(contentsOf: action.rawValue.utf8)
        w.raw("\",\"ts\":")
        w.int(ts)
        if let dwellMs {
            w.raw(",\"dwell_ms\":")
            w.int(dwellMs)
        }
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }
}
