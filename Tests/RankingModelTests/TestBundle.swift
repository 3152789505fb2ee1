import Foundation
@testable import RankingModel

/// Deterministic pseudo-random numbers for fixtures (SplitMix64).
struct TestRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }
    mutating func int(_ range: Range<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func normal() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// A directory removed when this object goes away.
final class TempDir {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("rm-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A tiny model bundle described field by field, so a test can break exactly one thing and
/// write it out (manifest.json, weights.safetensors, items.jsonl).
struct TestBundle {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var data: [UInt8]
    }

    var format = "feedrank.bundle.v1"
    var modelVersion = "test-1"
    var dim = 4
    var categories = ["news", "sports", "music"]
    var devices = ["ios", "android", "web"]
    var actions: [(String, Double)] = [("impression", 0.05), ("click", 1), ("like", 2), ("comment", 2),
                                      ("share", 3), ("dwell", 0.5), ("hide", -3)]
    var halfLifeHours = 72.0
    var hidden = [8, 6]
    var temperature = 0.05
    var scoreBias = -1.5
    var tensors: [Tensor] = []
    var itemLines: [String] = []
    /// Bytes cut off the end of weights.safetensors.
    var truncateWeights = 0
    var omit: Set<String> = []

    var featureCount: Int { dim + categories.count + actions.count + 4 + devices.count + 1 }

    /// A consistent bundle: random tower, `items` unit-norm embeddings with ids 1000, 1001, ...
    static func make(items: Int = 6, seed: UInt64 = 1) -> TestBundle {
        var b = TestBundle()
        var rng = TestRandom(seed: seed)
        let widths = [b.featureCount] + b.hidden + [b.dim]
        for k in 0..<(widths.count - 1) {
            let (i, o) = (widths[k], widths[k + 1])
            let scale = 1 / Double(i).squareRoot()
            b.tensors.append(.floats("user_tower.\(k).weight", [o, i], (0..<(i * o)).map { _ in Float(rng.normal() * scale) }))
            b.tensors.append(.floats("user_tower.\(k).bias", [o], (0..<o).map { _ in Float(rng.normal() * 0.1) }))
        }
        var emb: [Float] = []
        for _ in 0..<items {
            let v = (0..<b.dim).map { _ in rng.normal() }
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            emb += v.map { Float($0 / n) }
        }
        b.tensors.append(.floats("item_embeddings", [items, b.dim], emb))
        b.tensors.append(.int64s("item_ids", (0..<items).map { Int64(1000 + $0) }))
        for i in 0..<items {
            b.itemLines.append(#"{"item_id": \#(1000 + i), "category": "\#(b.categories[i % b.categories.count])", "creator_id": \#(i / 2), "published_at": \#(1_795_600_000_000 + Int64(i) * 60_000), "quality": \#(0.25 + 0.125 * Double(i % 6)), "promoted": \#(i % 4 == 3)}"#)
        }
        return b
    }

    func tensorIndex(_ name: String) -> Int { tensors.firstIndex { $0.name == name }! }

    mutating func setFloats(_ name: String, shape: [Int]? = nil, _ values: [Float]) {
        let i = tensorIndex(name)
        tensors[i] = .floats(name, shape ?? tensors[i].shape, values)
    }

    func floats(_ name: String) -> [Float] {
        let t = tensors[tensorIndex(name)]
        return stride(from: 0, to: t.data.count, by: 4).map { o in
            Float(bitPattern: UInt32(t.data[o]) | UInt32(t.data[o + 1]) << 8 | UInt32(t.data[o + 2]) << 16 | UInt32(t.data[o + 3]) << 24)
        }
    }

    var manifestText: String {
        let acts = actions.map { #"{"name": "\#($0.0)", "weight": \#($0.1)}"# }.joined(separator: ", ")
        let q = { (xs: [String]) in xs.map { "\"\($0)\"" }.joined(separator: ", ") }
        return """
        {"format": "\(format)", "model_version": "\(modelVersion)", "embedding_dim": \(dim),
         "categories": [\(q(categories))], "devices": [\(q(devices))], "actions": [\(acts)],
         "half_life_hours": \(halfLifeHours), "user_tower": {"hidden": \(hidden), "activation": "relu"},
         "temperature": \(temperature), "score_bias": \(scoreBias), "exporter": {"note": "ignored"}}
        """
    }

    var safetensorsBytes: [UInt8] {
        var header = "{\"__metadata__\": {\"format\": \"pt\"}"
        var offset = 0
        for t in tensors {
            header += ", \"\(t.name)\": {\"dtype\": \"\(t.dtype)\", \"shape\": \(t.shape), \"data_offsets\": [\(offset), \(offset + t.data.count)]}"
            offset += t.data.count
        }
        header += "}"
        while (header.utf8.count + 8) % 8 != 0 { header += " " }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out += $0 }
        out += header.utf8
        for t in tensors { out += t.data }
        return Array(out.dropLast(truncateWeights))
    }

    /// Writes the bundle into a fresh temporary directory.
    func write() -> TempDir {
        let dir = TempDir()
        let files: [(String, [UInt8])] = [
            ("manifest.json", Array(manifestText.utf8)),
            ("weights.safetensors", safetensorsBytes),
            ("items.jsonl", Array((itemLines.joined(separator: "\n") + "\n").utf8)),
        ]
        for (name, bytes) in files where !omit.contains(name) {
            precondition(FileManager.default.createFile(atPath: "\(dir.path)/\(name)", contents: Data(bytes)), "cannot write \(name)")
        }
        return dir
    }

    /// Writes and loads.
    func load() throws -> (ModelBundle, TempDir) {
        let dir = write()
        return (try ModelBundle.load(directory: dir.path), dir)
    }

    /// The load error's message, or nil when the bundle loads.
    func loadError() -> ModelError? {
        let dir = write()
        do {
            _ = try ModelBundle.load(directory: dir.path)
            return nil
        } catch {
            return error
        }
    }
}

extension TestBundle.Tensor {
    static func floats(_ name: String, _ shape: [Int], _ values: [Float]) -> Self {
        var data: [UInt8] = []
        data.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        return Self(name: name, dtype: "F32", shape: shape, data: data)
    }

    static func int64s(_ name: String, _ values: [Int64]) -> Self {
        var data: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
        return Self(name: name, dtype: "I64", shape: [values.count], data: data)
    }
}
