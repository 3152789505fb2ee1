/// The Redis keys and TTLs of contract section 4.
public struct CacheKeys: Sendable, Equatable {
    public var rankingTTL = 12 * 3600
    public var backfillRankingTTL = 24 * 3600
    public var userEmbeddingTTL = 3600
    public var itemEmbeddingTTL = 24 * 3600
    public var featuresTTL = 30 * 60

    public init() {}

    public static func ranking(_ user: Int64) -> String { "rankings:user:\(user)" }
    public static func userEmbedding(_ user: Int64) -> String { "embedding:user:\(user)" }
    public static func itemEmbedding(_ item: Int64) -> String { "embedding:item:\(item)" }
    public static func features(_ user: Int64) -> String { "features:user:\(user)" }

    /// D floats, little-endian float32 (the L2/L3 value format).
    public static func floatBytes(_ v: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: v.count * 4)
        out.withUnsafeMutableBytes { raw in
            for (i, f) in v.enumerated() { raw.storeBytes(of: f.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        return out
    }

    public static func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }
}
