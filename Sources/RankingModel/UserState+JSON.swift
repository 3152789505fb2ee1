extension UserState {
    /// The contract's JSON encoding (compact, fixed key order). Doubles are written in their
    /// shortest round-trip form, so `decode(jsonBytes())` gives back the same bits.
    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 64 + 24 * (embeddingSum.count + categoryWeights.count + actionCounts.count)
                                     + 32 * impressions.count + 24 * recentEventIds.count)
        w.raw("{\"v\":1,\"user_id\":")
        w.int(userId)
        w.raw(",\"t_last\":")
        w.int(tLast)
        w.raw(",\"S\":")
        w.doubles(embeddingSum)
        w.raw(",\"c\":")
        w.doubles(categoryWeights)
        w.raw(",\"n\":")
        w.doubles(actionCounts)
        w.raw(",\"impressions\":[")
        for (i, imp) in impressions.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.byte(UInt8(ascii: "["))
            w.int(imp.itemId)
            w.byte(UInt8(ascii: ","))
            w.int(imp.ts)
            w.byte(UInt8(ascii: "]"))
        }
        w.raw("],\"src\":")
        if let source {
            w.raw("{\"p\":")
            w.int(Int64(source.partition))
            w.raw(",\"o\":")
            w.int(source.offset)
            w.byte(UInt8(ascii: "}"))
        } else {
            w.raw("null")
        }
        w.raw(",\"recent_event_ids\":[")
        for (i, id) in recentEventIds.enumerated() {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.string(id)
        }
        w.raw("]}")
        return w.bytes
    }

    public var jsonString: String { String(decoding: jsonBytes(), as: UTF8.self) }

    /// Parses a state document (ours or any JSON writer's, e.g. Python's json.dumps). With a
    /// manifest, S/c/n must have its D/C/A lengths. Unknown fields are ignored; `impressions`,
    /// `src` and `recent_event_ids` may be absent.
    public static func decode(_ bytes: [UInt8], manifest: Manifest? = nil) throws(ModelError) -> UserState {
        try bytes.withUnsafeBufferPointer { (buf) throws(ModelError) -> UserState in try decode(buf, manifest: manifest) }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, manifest: Manifest? = nil) throws(ModelError) -> UserState {
        try decode(bytes.bindMemory(to: UInt8.self), manifest: manifest)
    }

    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>, manifest: Manifest? = nil) throws(ModelError) -> UserState {
        let state: UserState
        do {
            var r = JSONReader(bytes)
            state = try parse(&r)
        } catch {
            throw ModelError(.invalidState, "user state JSON: \(error.text)")
        }
        if let manifest {
            let checks = [("S", state.embeddingSum.count, manifest.embeddingDimension, "embedding_dim"),
                          ("c", state.categoryWeights.count, manifest.categoryCount, "categories"),
                          ("n", state.actionCounts.count, manifest.actionCount, "actions")]
            for (field, got, want, what) in checks where got != want {
                throw ModelError(.invalidState, "user state JSON: field '\(field)' has \(got) values, the bundle's \(what) needs \(want)")
            }
        }
        return state
    }

    private static func parse(_ r: inout JSONReader) throws(JSONProblem) -> UserState {
        var version: Int64?, userId: Int64?, tLast: Int64?
        var s: [Double]?, c: [Double]?, n: [Double]?
        var impressions: [Impression] = [], source: SourcePosition?, recent: [String] = []
        var obj = try r.beginObject()
        while let key = try r.nextKey(&obj) {
            if key.is("v") { version = try r.readInt64(field: "v") }
            else if key.is("user_id") { userId = try r.readInt64(field: "user_id") }
            else if key.is("t_last") { tLast = try r.readInt64(field: "t_last") }
            else if key.is("S") { s = try doubles(&r, "S") }
            else if key.is("c") { c = try doubles(&r, "c") }
            else if key.is("n") { n = try doubles(&r, "n") }
            else if key.is("impressions") {
                var arr = try r.beginArray(field: "impressions")
                while try r.nextElement(&arr) {
                    let field = "impressions[\(impressions.count)]"
                    var pair = try r.beginArray(field: field)
                    guard try r.nextElement(&pair) else { throw r.invalid(field, "expected [item_id, ts]") }
                    let item = try r.readInt64(field: field + "[0]")
                    guard try r.nextElement(&pair) else { throw r.invalid(field, "expected [item_id, ts]") }
                    let ts = try r.readInt64(field: field + "[1]")
                    guard try !r.nextElement(&pair) else { throw r.invalid(field, "expected [item_id, ts]") }
                    impressions.append(Impression(itemId: item, ts: ts))
                }
            } else if key.is("src") {
                if try !r.readNullIfPresent() {
                    var p: Int64?, o: Int64?
                    var so = try r.beginObject(field: "src")
                    while let k = try r.nextKey(&so) {
                        if k.is("p") { p = try r.readInt64(field: "src.p") }
                        else if k.is("o") { o = try r.readInt64(field: "src.o") }
                        else { try r.skipValue() }
                    }
                    guard let p, let partition = Int32(exactly: p) else { throw r.invalid("src.p", "missing or out of range") }
                    guard let o else { throw r.invalid("src.o", "missing") }
                    source = SourcePosition(partition: partition, offset: o)
                }
            } else if key.is("recent_event_ids") {
                var arr = try r.beginArray(field: "recent_event_ids")
                while try r.nextElement(&arr) { recent.append(try r.readString(field: "recent_event_ids")) }
            } else { try r.skipValue() }
        }
        try r.expectEnd()
        guard let version else { throw r.invalid("v", "missing") }
        guard version == Int64(UserState.version) else {
            throw r.invalid("v", "unsupported version \(version) (this build reads \(UserState.version))")
        }
        guard let userId else { throw r.invalid("user_id", "missing") }
        guard let tLast else { throw r.invalid("t_last", "missing") }
        guard let s else { throw r.invalid("S", "missing") }
        guard let c else { throw r.invalid("c", "missing") }
        guard let n else { throw r.invalid("n", "missing") }
        return UserState(userId: userId, tLast: tLast, embeddingSum: s, categoryWeights: c, actionCounts: n,
                         impressions: impressions, source: source, recentEventIds: recent)
    }

    private static func doubles(_ r: inout JSONReader, _ field: String) throws(JSONProblem) -> [Double] {
        var out: [Double] = []
        var arr = try r.beginArray(field: field)
        while try r.nextElement(&arr) { out.append(try r.readDouble(field: field)) }
        return out
    }
}
