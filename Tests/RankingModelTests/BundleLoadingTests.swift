import Testing
@testable import RankingModel

@Suite("Bundle loading")
struct BundleLoadingTests {
    @Test("a consistent bundle loads: manifest, tower, items in row order, id lookup, mapped embeddings")
    func loadsValidBundle() throws {
        let spec = TestBundle.make(items: 6)
        let (bundle, _dir) = try spec.load()
        _ = _dir
        let m = bundle.manifest
        #expect(m.modelVersion == "test-1")
        #expect(m.embeddingDimension == 4)
        #expect(m.categories == ["news", "sports", "music"])
        #expect(m.featureCount == spec.featureCount)
        #expect(m.slot(of: .dwell) == 5 && m.weight(of: .hide) == -3)
        #expect(m.halfLifeMilliseconds == 72 * 3_600_000)
        #expect(m.temperature == 0.05 && m.scoreBias == -1.5)
        #expect(bundle.tower.layers.map(\.outputs) == [8, 6, 4])
        #expect(bundle.tower.inputWidth == spec.featureCount)
        #expect(bundle.itemCount == 6)
        #expect(bundle.items.map(\.id) == (1000..<1006).map(Int64.init))
        #expect(bundle.items[4] == Item(id: 1004, category: 1, creatorId: 2, publishedAt: 1_795_600_240_000, quality: 0.75, promoted: false))
        #expect(bundle.promotedRows == [3])
        #expect(bundle.row(of: 1002) == 2)
        #expect(bundle.row(of: 42) == nil)
        let emb = spec.floats("item_embeddings")
        #expect(bundle.embedding(row: 5) == Array(emb[20..<24]))
        #expect(bundle.embeddingPointer(row: 1)[3] == emb[7])
        bundle.withItemEmbeddings { #expect(Array($0) == emb) }
        #expect(bundle.warnings.isEmpty)
        #expect(bundle.tower.layers[1].weight == spec.floats("user_tower.1.weight"))
    }

    @Test("items.jsonl lines for items without an embedding are ignored with a warning; blank lines are skipped")
    func extraLinesWarn() throws {
        var spec = TestBundle.make(items: 3)
        spec.itemLines.insert(#"{"item_id": 77, "category": "music", "creator_id": 1, "published_at": 0, "quality": 1, "promoted": false, "extra": [1, {"a": null}]}"#, at: 1)
        spec.itemLines.append("   ")
        let (bundle, _dir) = try spec.load()
        _ = _dir
        #expect(bundle.itemCount == 3)
        #expect(bundle.item(id: 77) == nil)
        #expect(bundle.warnings.count == 1)
        #expect(bundle.warnings[0].contains("77 (line 2)"))
    }

    @Test("items.jsonl with CRLF line endings loads")
    func crlf() throws {
        var spec = TestBundle.make(items: 3)
        spec.itemLines = spec.itemLines.map { $0 + "\r" }
        let (bundle, _dir) = try spec.load()
        _ = _dir
        #expect(bundle.items.map(\.id) == [1000, 1001, 1002])
    }

    @Test("non-contiguous item ids are looked up through the hash table")
    func scatteredIds() throws {
        var spec = TestBundle.make(items: 300)
        var rng = TestRandom(seed: 4)
        var ids = Set<Int64>()
        while ids.count < 300 { ids.insert(Int64(bitPattern: rng.next()) >> 20) }
        let list = Array(ids)
        spec.tensors[spec.tensorIndex("item_ids")] = .int64s("item_ids", list)
        for (i, id) in list.enumerated() {
            spec.itemLines[i] = spec.itemLines[i].replacingOccurrences(of: "\"item_id\": \(1000 + i),", with: "\"item_id\": \(id),")
        }
        let (bundle, _dir) = try spec.load()
        _ = _dir
        for (row, id) in list.enumerated() {
            #expect(bundle.row(of: id) == row)
            #expect(bundle.items[row].id == id)
        }
        #expect(bundle.row(of: 1000) == nil || list.contains(1000))
        #expect(bundle.row(of: list.max()! + 1) == nil)
    }

    @Test("a misaligned item matrix is copied, not rejected")
    func misalignedEmbeddings() throws {
        var spec = TestBundle.make(items: 3)
        // A 2-byte tensor before the matrix shifts it off 4-byte alignment.
        spec.tensors.insert(TestBundle.Tensor(name: "pad", dtype: "U8", shape: [2], data: [1, 2]), at: 0)
        let (bundle, _dir) = try spec.load()
        _ = _dir
        #expect(bundle.embedding(row: 2) == Array(spec.floats("item_embeddings")[8..<12]))
    }

    // MARK: bad bundles: each names the file and the tensor/line/field

    @Test("a missing file is named", arguments: ["manifest.json", "weights.safetensors", "items.jsonl"])
    func missingFile(name: String) {
        var spec = TestBundle.make()
        spec.omit = [name]
        let e = spec.loadError()
        #expect(e?.code == .missingFile)
        #expect(e?.message.hasPrefix("\(name): no such file") == true)
        #expect(e?.isRetryable == false)
    }

    @Test("a missing directory is reported")
    func missingDirectory() {
        #expect(throws: ModelError.self) { try ModelBundle.load(directory: "/nonexistent/bundle") }
    }

    @Test("a wrong format string is rejected")
    func wrongFormat() {
        var spec = TestBundle.make()
        spec.format = "feedrank.bundle.v2"
        let e = spec.loadError()
        #expect(e?.code == .badManifest)
        #expect(e?.message == #"manifest.json: format is "feedrank.bundle.v2", expected "feedrank.bundle.v1""#)
    }

    @Test("malformed or incomplete manifests name the field")
    func badManifestFields() {
        var spec = TestBundle.make()
        spec.actions.removeLast()
        #expect(spec.loadError()?.message == #"manifest.json: actions lacks "hide" (every user-activity action needs a weight)"#)

        spec = TestBundle.make()
        spec.actions[0].0 = "save"
        #expect(spec.loadError()?.message.hasPrefix(#"manifest.json: field 'actions[0].name': unknown action "save""#) == true)

        spec = TestBundle.make()
        spec.categories.append("news")
        #expect(spec.loadError()?.message == #"manifest.json: category "news" is listed twice"#)

        spec = TestBundle.make()
        spec.temperature = 0
        #expect(spec.loadError()?.message == "manifest.json: temperature must be positive, got 0.0")
    }

    @Test("a manifest that is not JSON names the byte")
    func manifestSyntax() throws {
        #expect(throws: ModelError(.badManifest, "manifest.json: invalid JSON at byte 11: expected ':' after a key")) {
            try Manifest.parse(Array(#"{"format" 1, "#.utf8))
        }
        #expect(throws: ModelError(.badManifest, "manifest.json: field 'embedding_dim': expected an integer, got 4.5")) {
            try Manifest.parse(Array(#"{"embedding_dim": 4.5}"#.utf8))
        }
        #expect(throws: ModelError(.badManifest, "manifest.json: field 'format' is missing")) {
            try Manifest.parse(Array(#"{}"#.utf8))
        }
    }

    @Test("wrong tensor shapes name the tensor")
    func wrongShapes() {
        var spec = TestBundle.make(items: 3)
        spec.setFloats("item_embeddings", shape: [2, 6], spec.floats("item_embeddings"))
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'item_embeddings' has shape [2, 6], expected [*, 4]")

        spec = TestBundle.make(items: 3)
        spec.setFloats("user_tower.1.weight", shape: [8, 6], spec.floats("user_tower.1.weight"))
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'user_tower.1.weight' has shape [8, 6], expected [6, 8]")

        spec = TestBundle.make(items: 3)
        spec.tensors[spec.tensorIndex("item_ids")] = .int64s("item_ids", [1000, 1001])
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'item_ids' has shape [2], expected [3]")

        spec = TestBundle.make(items: 3)
        spec.hidden = [8]
        #expect(spec.loadError()?.message.hasPrefix("weights.safetensors: 3 user_tower layers, but manifest.json's user_tower.hidden [8] means 2") == true)
    }

    @Test("a wrong dtype names the tensor")
    func wrongDtype() {
        var spec = TestBundle.make(items: 3)
        let i = spec.tensorIndex("item_ids")
        spec.tensors[i].dtype = "I32"
        spec.tensors[i].shape = [6]
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'item_ids' has dtype I32, expected I64")
    }

    @Test("a gap in user_tower.{k} indices is rejected")
    func towerGap() {
        var spec = TestBundle.make()
        for i in spec.tensors.indices where spec.tensors[i].name.hasPrefix("user_tower.2.") {
            spec.tensors[i].name = spec.tensors[i].name.replacingOccurrences(of: "user_tower.2.", with: "user_tower.3.")
        }
        #expect(spec.loadError()?.message == "weights.safetensors: gap in user_tower layer indices: found [0, 1, 3], user_tower.2 is missing")
    }

    @Test("a missing bias and a stray user_tower tensor are named")
    func towerStrays() {
        var spec = TestBundle.make()
        spec.tensors.remove(at: spec.tensorIndex("user_tower.0.bias"))
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'user_tower.0.bias' is missing")

        spec = TestBundle.make()
        spec.tensors.append(.floats("user_tower.0.scale", [1], [1]))
        #expect(spec.loadError()?.message == "weights.safetensors: unexpected tensor 'user_tower.0.scale' (expected user_tower.{k}.weight or .bias)")
    }

    @Test("NaN or inf in weights or embeddings names the tensor and position")
    func nonFiniteValues() {
        var spec = TestBundle.make()
        var w = spec.floats("user_tower.0.weight")
        w[spec.featureCount + 2] = .nan
        spec.setFloats("user_tower.0.weight", w)
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'user_tower.0.weight' holds nan at [1, 2]")
        #expect(spec.loadError()?.code == .badValues)

        spec = TestBundle.make()
        var e = spec.floats("item_embeddings")
        e[9] = .infinity
        spec.setFloats("item_embeddings", e)
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'item_embeddings' holds inf at [2, 1] (item 1002)")
    }

    @Test("embeddings that are not L2-normalised are rejected")
    func notNormalised() {
        var spec = TestBundle.make()
        var e = spec.floats("item_embeddings")
        for j in 4..<8 { e[j] *= 1.01 }
        spec.setFloats("item_embeddings", e)
        let m = spec.loadError()?.message ?? ""
        #expect(m.hasPrefix("weights.safetensors: tensor 'item_embeddings' row 1 (item 1001) has L2 norm 1.0099"))
    }

    @Test("an unknown category names the line")
    func unknownCategory() {
        var spec = TestBundle.make()
        spec.itemLines[2] = spec.itemLines[2].replacingOccurrences(of: "\"music\"", with: "\"cooking\"")
        let e = spec.loadError()
        #expect(e?.code == .badItems)
        #expect(e?.message == #"items.jsonl line 3: field 'category': unknown category "cooking" (not in manifest.json)"#)
    }

    @Test("duplicate item ids are rejected, in the tensor and in items.jsonl")
    func duplicateIds() {
        var spec = TestBundle.make(items: 4)
        spec.tensors[spec.tensorIndex("item_ids")] = .int64s("item_ids", [1000, 1001, 1002, 1001])
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'item_ids' holds 1001 twice (rows 1 and 3)")

        spec = TestBundle.make(items: 4)
        spec.itemLines.append(spec.itemLines[1])
        #expect(spec.loadError()?.message == "items.jsonl line 5: duplicate item_id 1001 (first on line 2)")
    }

    @Test("an embedded item without an items.jsonl line is rejected")
    func missingItemLine() {
        var spec = TestBundle.make(items: 4)
        spec.itemLines.remove(at: 2)
        #expect(spec.loadError()?.message == "items.jsonl: embedded item 1002 (row 2 of item_ids) has no line")
    }

    @Test("a truncated tensor is named")
    func truncated() {
        var spec = TestBundle.make(items: 4)
        spec.truncateWeights = 10
        let e = spec.loadError()
        #expect(e?.code == .badTensor)
        #expect(e?.message.hasPrefix("weights.safetensors: tensor 'item_ids' is truncated") == true)

        spec.truncateWeights = 0
        spec.truncateWeights = spec.safetensorsBytes.count - 12
        #expect(spec.loadError()?.message.hasPrefix("weights.safetensors: header length") == true)
    }

    @Test("data_offsets that disagree with dtype and shape are rejected")
    func offsetsDisagree() {
        var spec = TestBundle.make(items: 4)
        let i = spec.tensorIndex("item_embeddings")
        spec.tensors[i].shape = [4, 3]
        #expect(spec.loadError()?.message == "weights.safetensors: tensor 'item_embeddings' has 64 data bytes, but F32 [4, 3] needs 48")
    }

    @Test("bad items.jsonl lines name the line and field", arguments: [
        (#"{"item_id": 1001, "category": "sports", "creator_id": 0, "published_at": 1, "quality": 0.5"#,
         "items.jsonl line 2: invalid JSON at byte 91: unterminated object"),
        (#"{"item_id": "1001", "category": "sports", "creator_id": 0, "published_at": 1, "quality": 0.5}"#,
         "items.jsonl line 2: field 'item_id': expected an integer, got a string"),
        (#"{"item_id": 1001, "category": "sports", "creator_id": 0, "published_at": 1}"#,
         "items.jsonl line 2: field 'quality': missing"),
        (#"{"item_id": 1001, "category": "sports", "creator_id": 0, "published_at": 1, "quality": NaN}"#,
         "items.jsonl line 2: invalid JSON at byte 88: unexpected 'N'"),
        (#"{"item_id": 1001, "category": "sports", "creator_id": 0, "published_at": 1, "quality": 1, "promoted": 0}"#,
         "items.jsonl line 2: field 'promoted': expected true or false, got a number"),
        (#"[1001]"#, "items.jsonl line 2: expected an object, got an array"),
    ])
    func badItemLine(line: String, message: String) {
        var spec = TestBundle.make(items: 4)
        spec.itemLines[1] = line
        #expect(spec.loadError()?.message == message)
    }
}
