extension Manifest {
    /// Parses and validates manifest.json. Unknown fields are ignored.
    public static func parse(_ bytes: [UInt8]) throws(ModelError) -> Manifest {
        let f: Fields
        do {
            f = try bytes.withUnsafeBufferPointer { (buf) throws(JSONProblem) -> Fields in
                var r = JSONReader(buf)
                return try Fields(&r)
            }
        } catch {
            throw ModelError(.badManifest, "manifest.json: \(error.text)")
        }
        func need<T>(_ v: T?, _ name: String) throws(ModelError) -> T {
            guard let v else { throw ModelError(.badManifest, "manifest.json: field '\(name)' is missing") }
            return v
        }
        return try Manifest(
            format: need(f.format, "format"), modelVersion: need(f.version, "model_version"),
            embeddingDimension: need(f.dim, "embedding_dim"),
            categories: need(f.categories, "categories"), devices: need(f.devices, "devices"),
            actions: need(f.actions, "actions"), halfLifeHours: need(f.halfLife, "half_life_hours"),
            hiddenSizes: need(f.hidden, "user_tower.hidden"), activation: f.activation ?? "relu",
            temperature: need(f.temperature, "temperature"), scoreBias: f.scoreBias ?? 0)
    }

    /// The raw fields as read, before validation.
    private struct Fields {
        var format: String?, version: String?, dim: Int?, categories: [String]?, devices: [String]?
        var actions: [ActionWeight]?, halfLife: Double?, hidden: [Int]?, activation: String?
        var temperature: Double?, scoreBias: Double?

        init(_ r: inout JSONReader) throws(JSONProblem) {
            var obj = try r.beginObject()
            while let key = try r.nextKey(&obj) {
                if key.is("format") { format = try r.readString(field: "format") }
                else if key.is("model_version") { version = try r.readString(field: "model_version") }
                else if key.is("embedding_dim") { dim = Int(try r.readInt64(field: "embedding_dim")) }
                else if key.is("categories") { categories = try Fields.strings(&r, "categories") }
                else if key.is("devices") { devices = try Fields.strings(&r, "devices") }
                else if key.is("half_life_hours") { halfLife = try r.readDouble(field: "half_life_hours") }
                else if key.is("temperature") { temperature = try r.readDouble(field: "temperature") }
                else if key.is("score_bias") {
                    scoreBias = try r.readNullIfPresent() ? nil : try r.readDouble(field: "score_bias")
                } else if key.is("actions") { actions = try Fields.actions(&r) }
                else if key.is("user_tower") {
                    var o = try r.beginObject(field: "user_tower")
                    while let k = try r.nextKey(&o) {
                        if k.is("hidden") {
                            var sizes: [Int] = []
                            var arr = try r.beginArray(field: "user_tower.hidden")
                            while try r.nextElement(&arr) { sizes.append(Int(try r.readInt64(field: "user_tower.hidden"))) }
                            hidden = sizes
                        } else if k.is("activation") {
                            activation = try r.readString(field: "user_tower.activation")
                        } else { try r.skipValue() }
                    }
                } else { try r.skipValue() }
            }
            try r.expectEnd()
        }

        static func actions(_ r: inout JSONReader) throws(JSONProblem) -> [ActionWeight] {
            var list: [ActionWeight] = []
            var arr = try r.beginArray(field: "actions")
            while try r.nextElement(&arr) {
                let field = "actions[\(list.count)]"
                var name: String?, weight: Double?
                var o = try r.beginObject(field: field)
                while let k = try r.nextKey(&o) {
                    if k.is("name") { name = try r.readString(field: field + ".name") }
                    else if k.is("weight") { weight = try r.readDouble(field: field + ".weight") }
                    else { try r.skipValue() }
                }
                guard let name else { throw r.invalid(field + ".name", "missing") }
                guard let weight else { throw r.invalid(field + ".weight", "missing") }
                guard let action = Action(rawValue: name) else {
                    throw r.invalid(field + ".name", "unknown action \"\(name)\" (known: \(Action.namesList))")
                }
                list.append(ActionWeight(action, weight))
            }
            return list
        }

        static func strings(_ r: inout JSONReader, _ field: String) throws(JSONProblem) -> [String] {
            var out: [String] = []
            var arr = try r.beginArray(field: field)
            while try r.nextElement(&arr) { out.append(try r.readString(field: field)) }
            return out
        }
    }
}
