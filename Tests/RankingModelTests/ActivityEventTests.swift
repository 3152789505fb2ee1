import Testing
@testable import RankingModel

@Suite("user-activity records")
struct ActivityEventTests {
    @Test("a contract record parses; unknown fields and a null dwell_ms are accepted")
    func parsesValid() throws {
        let e = try ActivityEvent.parse(#"{"event_id": "e-81f", "user_id": 42, "item_id": 9001, "action": "dwell", "ts": 1795700000000, "dwell_ms": 5300, "app": {"v": [1, 2]}}"#)
        #expect(e == ActivityEvent(eventId: "e-81f", userId: 42, itemId: 9001, action: .dwell, ts: 1_795_700_000_000, dwellMs: 5300))
        let f = try ActivityEvent.parse(#"{"ts":1,"action":"hide","item_id":-3,"user_id":7,"event_id":"\u00e9\ud83d\ude00","dwell_ms":null}"#)
        #expect(f.eventId == "é😀" && f.action == .hide && f.dwellMs == nil && f.itemId == -3)
    }

    @Test("an integral number written with a fraction is accepted as an integer")
    func integralFloat() throws {
        let e = try ActivityEvent.parse(#"{"event_id":"a","user_id":1,"item_id":2,"action":"click","ts":1.7957e12}"#)
        #expect(e.ts == 1_795_700_000_000)
    }

    @Test("the JSON writer's output parses back to the same event")
    func roundTrip() throws {
        let e = ActivityEvent(eventId: "q\"uo\\te\n", userId: 5, itemId: 6, action: .share, ts: 7, dwellMs: 8)
        #expect(try ActivityEvent.parse(e.jsonBytes()) == e)
    }

    @Test("invalid records say which field is wrong", arguments: [
        (#"{"user_id": 1, "item_id": 2, "action": "click", "ts": 3}"#, "field 'event_id': missing"),
        (#"{"event_id": "", "user_id": 1, "item_id": 2, "action": "click", "ts": 3}"#, "field 'event_id': must not be empty"),
        (#"{"event_id": 5, "user_id": 1, "item_id": 2, "action": "click", "ts": 3}"#, "field 'event_id': expected a string, got a number"),
        (#"{"event_id": "a", "user_id": "1", "item_id": 2, "action": "click", "ts": 3}"#, "field 'user_id': expected an integer, got a string"),
        (#"{"event_id": "a", "user_id": 1, "item_id": 2.5, "action": "click", "ts": 3}"#, "field 'item_id': expected an integer, got 2.5"),
        (#"{"event_id": "a", "user_id": 1, "item_id": 2, "action": "Click", "ts": 3}"#,
         #"field 'action': unknown action "Click" (expected one of impression, click, like, comment, share, dwell, hide)"#),
        (#"{"event_id": "a", "user_id": 1, "item_id": 2, "action": "click"}"#, "field 'ts': missing"),
        (#"{"event_id": "a", "user_id": 1, "item_id": 2, "action": "click", "ts": -5}"#, "field 'ts': must be milliseconds since the epoch (>= 0), got -5"),
        (#"{"event_id": "a", "user_id": 1, "item_id": 2, "action": "click", "ts": 3, "dwell_ms": -1}"#, "field 'dwell_ms': must be a non-negative integer, got -1"),
        (#"{"event_id": "a", "user_id": 99999999999999999999, "item_id": 2, "action": "click", "ts": 3}"#, "field 'user_id': expected an integer, got 99999999999999999999"),
        (#"{"event_id": "a", "user_id": 1, "item_id": 2, "action": "click", "ts": 3} x"#, "invalid JSON at byte 75: unexpected 'x' after the value"),
        (#"{"event_id": "a", "user_id": 1,"#, "invalid JSON at byte 32: expected a quoted key"),
        ("", "invalid JSON at byte 1: expected an object, found the end"),
        ("[]", "expected an object, got an array"),
    ])
    func invalid(text: String, message: String) {
        #expect(throws: ModelError(.invalidEvent, "user-activity record: \(message)")) { try ActivityEvent.parse(text) }
    }
}
