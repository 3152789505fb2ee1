import Testing
@testable import VectorIndex
import LinearAlgebra
#if canImport(Glibc)
import Glibc
#endif

@Suite("index files and TEXMEX files")
struct PersistenceTests {
    static let data = TestData(count: 1500, dimension: 16, clusters: 10)

    func readBytes(_ path: String) -> [UInt8] {
        let f = fopen(path, "rb")!
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    func writeBytes(_ path: String, _ bytes: [UInt8]) {
        let f = fopen(path, "wb")!
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }

    @Test("a large file opened resident is a 2 MiB-aligned copy of its bytes; a small one stays mapped")
    func residentFileIsAnAlignedCopy() throws {
        let big = temporaryPath("resident-big.bin"), small = temporaryPath("resident-small.bin")
        defer { unlink(big); unlink(small) }
        var rng = SplitMix64(seed: 5)
        let bytes = (0..<(HugePageMemory.minimumBytes + 12_345)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        writeBytes(big, bytes)
        writeBytes(small, Array(bytes.prefix(4096)))
        let copied = HugePageMemory.shouldCopy(byteCount: bytes.count)
        let file = try MappedFile(path: big, resident: true)
        #expect(file.size == bytes.count)
        #expect(UnsafeRawBufferPointer(start: file.base, count: file.size).elementsEqual(bytes))
        // Copied (unless FEEDRANK_HUGE_PAGES=0 is set for the test run) to a huge-page boundary.
        if copied { #expect(Int(bitPattern: file.base) % (2 << 20) == 0) }
        let mapped = try MappedFile(path: small, resident: true)
        #expect(UnsafeRawBufferPointer(start: mapped.base, count: mapped.size).elementsEqual(bytes.prefix(4096)))
        #expect(!HugePageMemory.shouldCopy(byteCount: 4096))
    }

    @Test("save then load (mapped) gives identical search results, and the loaded index accepts updates",
          arguments: [8, 4])
    func saveLoadRoundTrip(bits: Int) throws {
        let index = try makeIndex(Self.data, m: bits == 8 ? 4 : 8, bits: bits, labelCount: 4)
        let path = temporaryPath("roundtrip-\(bits).ivfpq")
        defer { unlink(path) }
        try index.save(to: path)
        let loaded = try IVFPQIndex.load(from: path, expectedDimension: 16)
        #expect(loaded.configuration == index.configuration)
        #expect(loaded.count == index.count)
        #expect(loaded.listSizes == index.listSizes)
        #expect(loaded.labels == index.labels)
        let s1 = index.makeSearcher(), s2 = loaded.makeSearcher()
        let q = TestData(count: 10, dimension: 16, clusters: 10, seed: 5)
        for qi in 0..<10 {
            let p = SearchParameters(nprobe: 5)
            #expect(s1.search(q.row(qi), k: 10, parameters: p) == s2.search(q.row(qi), k: 10, parameters: p))
            #expect(s1.search(q.row(qi), k: 5, parameters: p, filter: .label(2)) == s2.search(q.row(qi), k: 5, parameters: p, filter: .label(2)))
        }
        // Copy-on-write of mapped lists: remove and add on the loaded index.
        #expect(loaded.remove(ids: [0, 1, 2]) == 3)
        try Self.data.row(0).withUnsafeBufferPointer { try loaded.add($0, ids: [0]) }
        #expect(loaded.count == index.count - 2)
        // And it saves again.
        try loaded.save(to: path)
        #expect(try IVFPQIndex.load(from: path).count == index.count - 2)
    }

    @Test("corrupt, truncated, foreign and mismatched files fail with clear errors")
    func corruptFilesAreRejected() throws {
        let index = try makeIndex(Self.data, labelCount: 2)
        let path = temporaryPath("corrupt.ivfpq")
        defer { unlink(path) }
        try index.save(to: path)
        let good = readBytes(path)

        func expectLoadError(_ bytes: [UInt8], _ code: VectorIndexError.Code, mentioning word: String,
                             expectedDimension: Int? = nil) {
            writeBytes(path, bytes)
            guard let e = thrownError({ () throws(VectorIndexError) in try IVFPQIndex.load(from: path, expectedDimension: expectedDimension) }) else {
                Issue.record("loading must fail (\(word))")
                return
            }
            #expect(e.code == code)
            #expect(e.message.contains(path))
            #expect(e.message.contains(word), "message: \(e.message)")
        }
        var flipped = good
        flipped[good.count / 2] ^= 0x40
        expectLoadError(flipped, .corruptFile, mentioning: "checksum")
        expectLoadError(Array(good.prefix(good.count - 100)), .corruptFile, mentioning: "truncated")
        var foreign = good
        foreign[0] = UInt8(ascii: "X")
        expectLoadError(foreign, .corruptFile, mentioning: "magic")
        var future = good
        future[8] = 9
        expectLoadError(future, .incompatibleFile, mentioning: "version")
        expectLoadError(good, .incompatibleFile, mentioning: "dimension", expectedDimension: 32)
        expectLoadError(Array(good.prefix(20)), .corruptFile, mentioning: "short")
        // A missing file is an I/O error naming the path.
        #expect(throws: VectorIndexError.self) { try IVFPQIndex.load(from: path + ".missing") }
    }

    @Test("fvecs and ivecs round trip; a ragged file names the bad vector")
    func texmexRoundTrip() throws {
        let fpath = temporaryPath("v.fvecs"), ipath = temporaryPath("v.ivecs")
        defer { unlink(fpath); unlink(ipath) }
        let values: [Float] = (0..<12).map { Float($0) * 0.5 - 1 }
        try Texmex.writeFvecs(fpath, values: values, dimension: 3)
        let (read, n, d) = try Texmex.readFvecs(fpath)
        #expect(read == values && n == 4 && d == 3)
        #expect(try Texmex.readFvecs(fpath, limit: 2).values == Array(values.prefix(6)))
        try Texmex.writeIvecs(ipath, values: [1, 2, 3, 4], dimension: 2)
        #expect(try Texmex.readIvecs(ipath).values == [1, 2, 3, 4])
        // Second vector claims dimension 5.
        var bytes = readBytes(fpath)
        bytes[16] = 5
        writeBytes(fpath, bytes)
        let e = thrownError { () throws(VectorIndexError) in try Texmex.readFvecs(fpath) }
        #expect(e?.code == .corruptFile)
        #expect(e?.message.contains("vector 1") == true, "message: \(String(describing: e))")
    }
}
