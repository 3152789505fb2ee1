/// How an inverted list stores its PQ codes.
///
/// - `bytes`: 8-bit PQ, one byte per sub-quantizer, entry after entry (M bytes per entry), for
///   a sequential scalar scan with a float lookup table.
/// - `fastScan4`: 4-bit PQ in blocks of 32 entries (the FAISS fast-scan idea): for each pair of
///   sub-quantizers (2p, 2p+1) a block holds 32 bytes, byte j = code₂ₚ(j) | code₂ₚ₊₁(j) << 4,
///   so a scan looks up 16 entries per SIMD shuffle. A block is 16·M bytes; the last block of
///   a list is zero-padded.
public enum CodeLayout: Sendable, Equatable {
    case bytes(subquantizers: Int)
    case fastScan4(subquantizers: Int)

    public static let blockSize = 32

    public var subquantizers: Int {
        switch self {
        case .bytes(let m), .fastScan4(let m): return m
        }
    }

    /// Bytes of codes for a list of `count` entries.
    public func codeBytes(count: Int) -> Int {
        switch self {
        case .bytes(let m): return count * m
        case .fastScan4(let m): return (count + Self.blockSize - 1) / Self.blockSize * 16 * m
        }
    }

    /// Packs `count` unpacked codes (count × M bytes) into the layout.
    func pack(_ unpacked: UnsafePointer<UInt8>, count: Int, into out: UnsafeMutablePointer<UInt8>) {
        switch self {
        case .bytes(let m):
            out.update(from: unpacked, count: count * m)
        case .fastScan4(let m):
            let total = codeBytes(count: count)
            out.initialize(repeating: 0, count: total)
            for i in 0..<count {
                let block = i / Self.blockSize, j = i % Self.blockSize
                let blockBase = out + block * 16 * m
                for p in 0..<(m / 2) {
                    let lo = unpacked[i * m + 2 * p] & 0x0F, hi = unpacked[i * m + 2 * p + 1] & 0x0F
                    blockBase[p * 32 + j] = lo | (hi << 4)
                }
            }
        }
    }

    /// Unpacks the code of entry `i` into M bytes.
    func unpack(_ packed: UnsafePointer<UInt8>, entry i: Int, into out: UnsafeMutablePointer<UInt8>) {
        switch self {
        case .bytes(let m):
            out.update(from: packed + i * m, count: m)
        case .fastScan4(let m):
            let block = i / Self.blockSize, j = i % Self.blockSize
            let blockBase = packed + block * 16 * m
            for p in 0..<(m / 2) {
                let byte = blockBase[p * 32 + j]
                out[2 * p] = byte & 0x0F
                out[2 * p + 1] = byte >> 4
            }
        }
    }
}
