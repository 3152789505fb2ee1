/// The index file, version 1: one file, laid out so that it can be memory-mapped and searched
/// in place. Little-endian; every section 64-byte aligned.
///
///     header (128 bytes)
///       0  magic "FRIVFPQ\0"          8
///       8  version (1)               u32     12  header bytes (128)       u32
///      16  dimension                 u32     20  nlist                    u32
///      24  M (sub-quantizers)        u32     28  bits per code (4 or 8)   u32
///      32  coarse iterations         u32     36  PQ iterations            u32
///      40  max training pts / list   u32     44  flags                    u32
///          (flags bit 0: the lists are ordered along the residuals' principal axis)
///      48  seed                      u64     56  entries                  u64
///      64  file size in bytes        u64     72  checksum                 u64
///      80  reserved (zeros) up to 128
///     centroids     nlist × D float32
///     codebooks     M × 2^bits × D/M float32
///     axis          D float32; moments  D × D float32 (the residuals'; both only with flag bit 0)
///     directory     nlist × {count, runCount, idsOffset, runsOffset, codesOffset} (u64 each)
///     per list      ids (int64 × count), label runs (8 bytes each), codes (see CodeLayout)
///
/// The checksum (a 64-bit hash of the whole file with the checksum field zeroed) is checked on
/// load unless the caller opts out; sizes and offsets are checked always.
enum IndexFileFormat {
    static let magic: [UInt8] = Array("FRIVFPQ".utf8) + [0]
    static let version: UInt32 = 1
    static let headerBytes = 128
    static let checksumOffset = 72
    static let directoryEntryBytes = 40

    @inline(__always)
    static func align(_ x: Int) -> Int { (x + 63) & ~63 }
}

/// Little-endian byte buffer builder.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func pad(to offset: Int) { if bytes.count < offset { bytes.append(contentsOf: repeatElement(0, count: offset - bytes.count)) } }
    mutating func raw(_ p: UnsafeRawPointer, _ n: Int) { bytes.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n)) }
    mutating func floats(_ a: [Float]) { a.withUnsafeBytes { bytes.append(contentsOf: $0) } }
    mutating func setU64(_ v: UInt64, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { bytes[offset + i] = $0[i] } }
    }
}

/// A fast 64-bit checksum (four multiply-rotate lanes over 8-byte words, then a mix). Not a
/// cryptographic hash: it detects truncation, bit rot and accidental edits.
func checksum64(_ p: UnsafeRawPointer, count: Int, skipping skip: Range<Int>) -> UInt64 {
    let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    var lanes: (UInt64, UInt64, UInt64, UInt64) = (p1 &+ p2, p2, 0, 0 &- p1)
    @inline(__always) func word(_ off: Int) -> UInt64 {
        if skip.contains(off) { return 0 }
        return UInt64(littleEndian: p.loadUnaligned(fromByteOffset: off, as: UInt64.self))
    }
    @inline(__always) func round(_ acc: UInt64, _ w: UInt64) -> UInt64 {
        let x = acc &+ w &* p2
        return ((x << 31) | (x >> 33)) &* p1
    }
    var i = 0
    while i + 32 <= count {
        lanes.0 = round(lanes.0, word(i))
        lanes.1 = round(lanes.1, word(i + 8))
        lanes.2 = round(lanes.2, word(i + 16))
        lanes.3 = round(lanes.3, word(i + 24))
        i += 32
    }
    var h = lanes.0 ^ (lanes.1 &* 3) ^ (lanes.2 &* 5) ^ (lanes.3 &* 7) ^ UInt64(count)
    while i < count {
        let b = skip.contains(i) ? 0 : UInt64(p.load(fromByteOffset: i, as: UInt8.self))
        h = round(h, b)
        i += 1
    }
    h ^= h >> 33; h = h &* p2; h ^= h >> 29; h = h &* p1; h ^= h >> 32
    return h
}

extension IVFPQIndex {
    /// Writes the whole index to one file (atomically: a temporary file, then a rename).
    public func save(to path: String) throws(VectorIndexError) {
        try lock.withWriteLock { () throws(VectorIndexError) in
            guard isTrained else { throw VectorIndexError(.notTrained, "save \(path): the index is not trained") }
            let cfg = configuration
            var w = ByteWriter()
            w.bytes.append(contentsOf: IndexFileFormat.magic)
            w.u32(IndexFileFormat.version); w.u32(UInt32(IndexFileFormat.headerBytes))
            w.u32(UInt32(cfg.dimension)); w.u32(UInt32(cfg.nlist))
            w.u32(UInt32(cfg.subquantizers)); w.u32(UInt32(cfg.bitsPerCode))
            w.u32(UInt32(cfg.coarseIterations)); w.u32(UInt32(cfg.pqIterations))
            w.u32(UInt32(cfg.maxTrainingPointsPerList)); w.u32(axis.isEmpty ? 0 : 1)
            w.u64(cfg.seed); w.u64(UInt64(lists.totalCount))
            w.u64(0); w.u64(0)                      // file size, checksum: patched below
            w.pad(to: IndexFileFormat.headerBytes)
            w.floats(centroids)
            w.pad(to: IndexFileFormat.align(w.bytes.count))
            w.floats(pq.codebooks)
            w.pad(to: IndexFileFormat.align(w.bytes.count))
            if !axis.isEmpty {
                w.floats(axis)
                w.pad(to: IndexFileFormat.align(w.bytes.count))
                w.floats(residualMoments)
                w.pad(to: IndexFileFormat.align(w.bytes.count))
            }
            let directory = w.bytes.count
            w.pad(to: IndexFileFormat.align(directory + nlist * IndexFileFormat.directoryEntryBytes))
            var entries: [(UInt64, UInt64, UInt64, UInt64, UInt64)] = []
            for l in lists.lists {
                let idsOff = w.bytes.count
                if l.count > 0 { w.raw(l.ids!, l.count * 8) }
                let runsOff = w.bytes.count
                if l.runCount > 0 { w.raw(l.runs!, l.runCount * MemoryLayout<LabelRun>.stride) }
                w.pad(to: IndexFileFormat.align(w.bytes.count))
                let codesOff = w.bytes.count
                let cb = lists.layout.codeBytes(count: l.count)
                if cb > 0 { w.raw(l.codes!, cb) }
                w.pad(to: IndexFileFormat.align(w.bytes.count))
                entries.append((UInt64(l.count), UInt64(l.runCount), UInt64(idsOff), UInt64(runsOff), UInt64(codesOff)))
            }
            for (i, e) in entries.enumerated() {
                let at = directory + i * IndexFileFormat.directoryEntryBytes
                w.setU64(e.0, at: at); w.setU64(e.1, at: at + 8); w.setU64(e.2, at: at + 16)
                w.setU64(e.3, at: at + 24); w.setU64(e.4, at: at + 32)
            }
            w.setU64(UInt64(w.bytes.count), at: 64)
            let sum = w.bytes.withUnsafeBytes {
                checksum64($0.baseAddress!, count: $0.count, skipping: IndexFileFormat.checksumOffset..<(IndexFileFormat.checksumOffset + 8))
            }
            w.setU64(sum, at: IndexFileFormat.checksumOffset)
            try writeFile(path, w.bytes)
        }
    }

    /// Opens an index file by memory-mapping it (a large file is copied to huge pages instead,
    /// `HugePageMemory`): the inverted lists are searched in place (a list is copied only when an
    /// add/remove changes it). `expectedDimension` turns a
    /// dimension mismatch into an `incompatibleFile` error naming both values.
    public static func load(from path: String, expectedDimension: Int? = nil,
                            verifyChecksum: Bool = true) throws(VectorIndexError) -> IVFPQIndex {
        let file = try MappedFile(path: path, resident: true)
        let base = file.base, size = file.size
        func corrupt(_ what: String) -> VectorIndexError { VectorIndexError(.corruptFile, "\(path): \(what)") }
        guard size >= IndexFileFormat.headerBytes else { throw corrupt("\(size) bytes is too short for an index header") }
        guard (0..<8).allSatisfy({ base.load(fromByteOffset: $0, as: UInt8.self) == IndexFileFormat.magic[$0] }) else {
            throw corrupt("not a FeedRank IVF-PQ index (bad magic)")
        }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        let version = u32(8)
        guard version == Int(IndexFileFormat.version) else {
            throw VectorIndexError(.incompatibleFile, "\(path): index file version \(version); this build reads version \(IndexFileFormat.version)")
        }
        guard u32(12) == IndexFileFormat.headerBytes else { throw corrupt("header size \(u32(12)), expected \(IndexFileFormat.headerBytes)") }
        let declared = u64(64)
        guard declared == UInt64(size) else { throw corrupt("file is \(size) bytes but its header says \(declared) (truncated or padded)") }
        if verifyChecksum {
            let expected = u64(IndexFileFormat.checksumOffset)
            let actual = checksum64(base, count: size, skipping: IndexFileFormat.checksumOffset..<(IndexFileFormat.checksumOffset + 8))
            guard expected == actual else { throw corrupt("checksum mismatch (stored \(expected), computed \(actual)): the file is damaged") }
        }
        let cfg = IVFPQConfiguration(dimension: u32(16), nlist: u32(20), subquantizers: u32(24), bitsPerCode: u32(28),
                                     coarseIterations: u32(32), pqIterations: u32(36),
                                     maxTrainingPointsPerList: u32(40), seed: u64(48))
        do { try cfg.validate() } catch { throw corrupt("invalid configuration in header: \(error.message)") }
        if let expectedDimension, expectedDimension != cfg.dimension {
            throw VectorIndexError(.incompatibleFile, "\(path): index dimension \(cfg.dimension), expected \(expectedDimension)")
        }
        let d = cfg.dimension, nlist = cfg.nlist, ksub = 1 << cfg.bitsPerCode
        var offset = IndexFileFormat.headerBytes
        func floats(_ n: Int, _ what: String) throws(VectorIndexError) -> [Float] {
            guard offset + n * 4 <= size else { throw corrupt("\(what) run past the end of the file") }
            let a = [Float](unsafeUninitializedCapacity: n) { buf, c in
                UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: base + offset, byteCount: n * 4)
                c = n
            }
            offset = IndexFileFormat.align(offset + n * 4)
            return a
        }
        let centroids = try floats(nlist * d, "centroids")
        let codebooks = try floats(ksub * d, "PQ codebooks")
        let pq = try ProductQuantizer(dimension: d, subquantizers: cfg.subquantizers, bits: cfg.bitsPerCode, codebooks: codebooks)
        let flags = u32(44)
        guard flags & ~1 == 0 else { throw corrupt("unknown header flags \(flags)") }
        var axis: [Float] = [], moments: [Float] = []
        if flags & 1 != 0 {
            axis = try floats(d, "principal axis")
            moments = try floats(d * d, "residual moments")
            guard axis.allSatisfy(\.isFinite), moments.allSatisfy(\.isFinite) else { throw corrupt("non-finite principal axis or moments") }
        }
        let directory = offset
        guard directory + nlist * IndexFileFormat.directoryEntryBytes <= size else { throw corrupt("list directory runs past the end of the file") }
        let layout = cfg.layout
        var lists: [InvertedLists.List] = []
        lists.reserveCapacity(nlist)
        var total: UInt64 = 0
        for l in 0..<nlist {
            let at = directory + l * IndexFileFormat.directoryEntryBytes
            let count = Int(truncatingIfNeeded: u64(at)), runCount = Int(truncatingIfNeeded: u64(at + 8))
            let idsOff = Int(truncatingIfNeeded: u64(at + 16)), runsOff = Int(truncatingIfNeeded: u64(at + 24))
            let codesOff = Int(truncatingIfNeeded: u64(at + 32))
            guard count >= 0, count <= size / 8, runCount >= 0, runCount <= max(count, 0),
                  (count == 0) == (runCount == 0) else {
                throw corrupt("list \(l): inconsistent sizes (\(count) entries, \(runCount) label runs)")
            }
            total += UInt64(count)
            if count == 0 { lists.append(.init()); continue }
            let codeBytes = layout.codeBytes(count: count)
            guard idsOff % 8 == 0, runsOff % 8 == 0, idsOff >= directory, runsOff >= directory, codesOff >= directory,
                  idsOff + count * 8 <= size, runsOff + runCount * 8 <= size, codesOff + codeBytes <= size else {
                throw corrupt("list \(l): data offsets point outside the file")
            }
            let runs = (base + runsOff).bindMemory(to: LabelRun.self, capacity: runCount)
            for r in 0..<runCount {
                let ok = r == 0 ? runs[r].start == 0
                    : (runs[r].label > runs[r - 1].label && runs[r].start > runs[r - 1].start && Int(runs[r].start) < count)
                guard ok else { throw corrupt("list \(l): label run \(r) is out of order") }
            }
            lists.append(.init(count: count, ids: (base + idsOff).bindMemory(to: Int64.self, capacity: count),
                               runs: UnsafePointer(runs), runCount: runCount,
                               codes: (base + codesOff).bindMemory(to: UInt8.self, capacity: codeBytes), owned: nil))
        }
        guard total == u64(56) else { throw corrupt("lists hold \(total) entries but the header says \(u64(56))") }
        let inverted = InvertedLists(layout: layout, mappedLists: lists, backing: file)
        return IVFPQIndex(configuration: cfg, centroids: centroids, pq: pq, lists: inverted, axis: axis, residualMoments: moments)
    }
}
