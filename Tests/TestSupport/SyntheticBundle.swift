import Foundation
import RankingModel
import VectorIndex

/// Deterministic randomness for fixtures: the index's SplitMix64 stream, with the draws fixtures
/// need on top.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var source: SplitMix64
    public init(seed: UInt64) { source = SplitMix64(seed: seed) }
    public mutating func next() -> UInt64 { source.next() }
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    public mutating func gaussian() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2)
    }
}

/// A temporary directory removed on deinit.
public final class ScratchDirectory: @unchecked Sendable {
    public let path: String
    public init(_ prefix: String = "feedrank-test") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Writes small but complete model bundles (contract section 2) with a random user tower and
/// item embeddings clustered by category, for ranking and worker tests.
public struct SyntheticBundle: Sendable {
    public var items = 300
    public var categories = 5
    public var dimension = 8
    public var creators = 60
    public var hidden = [16]
    /// Fraction of items with quality < 0.5.
    public var lowQuality = 0.2
    /// Fraction of items published in the 24 h before `now`.
    public var fresh = 0.1
    /// Every n-th item is promoted (0: none).
    public var promotedEvery = 25
    /// Probability that an item belongs to category 0 (a concentrated catalogue when high).
    public var concentration = 0.0
    /// When > 0, embeddings (before normalising) vary mostly in their first `lowRank`
    /// dimensions: the rest get a fiftieth of the noise and no category center (a model whose
    /// embeddings are far from isotropic, like the demo worlds').
    public var lowRank = 0
    public var now: Int64 = 1_795_700_000_000
    public var temperature = 0.1
    public var scoreBias = -2.0
    public var modelVersion = "synthetic-1"
    public var seed: UInt64 = 1

    public init() {}

    public static let devices = ["ios", "android", "web"]
    public static let actions: [(String, Double)] = [("impression", 0.05), ("click", 1), ("like", 2), ("comment", 2),
                                                      ("share", 3), ("dwell", 0.5), ("hide", -3)]

    /// Writes the bundle into `directory` (created if needed) and returns its path.
    @discardableResult
    public func write(to directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var rng = SeededRandom(seed: seed)
        let catNames = (0..<categories).map { "cat\($0)" }
        let f = dimension + categories + Self.actions.count + 4 + Self.devices.count + 1
        let widths = [f] + hidden + [dimension]
        var tensors: [(String, String, [Int], [UInt8])] = []
        for k in 0..<(widths.count - 1) {
            let (i, o) = (widths[k], widths[k + 1])
            let scale = 1 / Double(i).squareRoot()
            tensors.append(("user_tower.\(k).weight", "F32", [o, i], floatBytes((0..<(i * o)).map { _ in Float(rng.gaussian() * scale) })))
            tensors.append(("user_tower.\(k).bias", "F32", [o], floatBytes((0..<o).map { _ in Float(rng.gaussian() * 0.05) })))
        }
        let spread = (0..<dimension).map { lowRank > 0 && $0 >= lowRank ? 0.02 : 1.0 }
        let centers = (0..<categories).map { _ in (0..<dimension).map { j in rng.gaussian() * spread[j] } }
        var emb: [Float] = []
        var lines: [String] = []
        for i in 0..<items {
            let cat = rng.unit() < concentration ? 0 : Int(rng.next() % UInt64(categories))
            let v = (0..<dimension).map { centers[cat][$0] + 0.8 * rng.gaussian() * spread[$0] }
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            emb += v.map { Float($0 / n) }
            let creator = Int(rng.next() % UInt64(max(1, creators)))
            let isFresh = rng.unit() < fresh
            let age = isFresh ? Int64(rng.unit() * 23.9 * 3_600_000) : Int64(86_400_000 + rng.unit() * 30 * 86_400_000)
            let quality = rng.unit() < lowQuality ? rng.unit() * 0.49 : 0.5 + rng.unit() * 0.5
            let promoted = promotedEvery > 0 && i % promotedEvery == promotedEvery - 1
            lines.append(#"{"item_id": \#(10_000 + i), "category": "\#(catNames[cat])", "creator_id": \#(creator), "published_at": \#(now - age), "quality": \#(quality), "promoted": \#(promoted)}"#)
        }
        tensors.append(("item_embeddings", "F32", [items, dimension], floatBytes(emb)))
        var ids: [UInt8] = []
        for i in 0..<items { withUnsafeBytes(of: Int64(10_000 + i).littleEndian) { ids += $0 } }
        tensors.append(("item_ids", "I64", [items], ids))

        let acts = Self.actions.map { #"{"name": "\#($0.0)", "weight": \#($0.1)}"# }.joined(separator: ", ")
        let q = { (xs: [String]) in xs.map { "\"\($0)\"" }.joined(separator: ", ") }
        let manifest = """
        {"format": "feedrank.bundle.v1", "model_version": "\(modelVersion)", "embedding_dim": \(dimension),
         "categories": [\(q(catNames))], "devices": [\(q(Self.devices))], "actions": [\(acts)],
         "half_life_hours": 72, "user_tower": {"hidden": \(hidden), "activation": "relu"},
         "temperature": \(temperature), "score_bias": \(scoreBias)}
        """
        var header = "{"
        var offset = 0
        for (i, t) in tensors.enumerated() {
            header += (i > 0 ? ", " : "") + "\"\(t.0)\": {\"dtype\": \"\(t.1)\", \"shape\": \(t.2), \"data_offsets\": [\(offset), \(offset + t.3.count)]}"
            offset += t.3.count
        }
        header += "}"
        while (header.utf8.count + 8) % 8 != 0 { header += " " }
        var st: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { st += $0 }
        st += header.utf8
        for t in tensors { st += t.3 }
        try Data(manifest.utf8).write(to: URL(fileURLWithPath: "\(directory)/manifest.json"))
        try Data(st).write(to: URL(fileURLWithPath: "\(directory)/weights.safetensors"))
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: "\(directory)/items.jsonl"))
        return directory
    }

    /// Writes into a new scratch directory and loads it.
    public func load() throws -> (ModelBundle, ScratchDirectory) {
        let dir = ScratchDirectory("bundle")
        try write(to: dir.path)
        return (try ModelBundle.load(directory: dir.path), dir)
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        return out
    }
}

/// The package root (for committed fixtures such as demo/bundle).
public enum PackageRoot {
    public static var path: String {
        // Tests/TestSupport/SyntheticBundle.swift -> package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
}
