#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Anonymous memory the kernel is asked to back with transparent huge pages (2 MiB on x86-64),
/// for the large read-mostly tables ranking reads at random: the item embedding matrix and the
/// IVF-PQ index's codes. Memory-mapped from their files they sit on 4 KiB pages, and at a
/// million items nearly every candidate's row costs a TLB miss and a page walk on top of its
/// cache misses (BENCHMARKS.md, issue 5: 2–9 % more rankings/s with the copy).
///
/// Where the kernel has transparent huge pages off (or only "never"), the copy is still made
/// and simply stays on small pages. `FEEDRANK_HUGE_PAGES=0` in the environment turns the copy
/// off: the files then stay memory-mapped (shared page cache between processes, less memory).
public final class HugePageMemory: @unchecked Sendable {
    /// The copy; valid as long as this object lives.
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappingLength: Int

    /// Files at least this large are worth the copy (smaller ones fit a few hundred small pages).
    public static let minimumBytes = 16 << 20

    /// Whether a file of `byteCount` bytes should be copied: large enough, and not turned off.
    public static func shouldCopy(byteCount: Int) -> Bool {
        guard byteCount >= minimumBytes else { return false }
        if let v = getenv("FEEDRANK_HUGE_PAGES"), String(cString: v) == "0" { return false }
        return true
    }

    /// Asks the kernel to back the whole 2 MiB pages inside `byteCount` bytes at `start` with
    /// transparent huge pages when they are first touched: for a large heap array the caller
    /// fills right after (the item table read at random by every exact score). Nothing when the
    /// array is smaller than `minimumBytes` or `FEEDRANK_HUGE_PAGES=0`.
    public static func adviseHuge(_ start: UnsafeMutableRawPointer, byteCount: Int) {
        guard shouldCopy(byteCount: byteCount) else { return }
        let huge = 2 << 20
        let from = (Int(bitPattern: start) + huge - 1) / huge * huge
        let to = (Int(bitPattern: start) + byteCount) / huge * huge
        guard to > from, let p = UnsafeMutableRawPointer(bitPattern: from) else { return }
        #if canImport(Glibc)
        _ = madvise(p, to - from, MADV_HUGEPAGE)
        #endif
    }

    /// A copy of `source` at a 2 MiB-aligned address; nil when the memory cannot be had (the
    /// caller keeps its mapping then).
    public convenience init?(copying source: UnsafeRawBufferPointer) {
        guard let base = source.baseAddress else { return nil }
        self.init(zeroedByteCount: source.count)
        mutableBase.copyMemory(from: base, byteCount: source.count)
    }

    /// `byteCount` zeroed bytes at a 2 MiB-aligned address, to be filled once by the caller
    /// (`mutableBase`) and then read at random: a large table built at load time. nil when the
    /// memory cannot be had.
    public init?(zeroedByteCount byteCount: Int) {
        let huge = 2 << 20
        let length = max(huge, (byteCount + huge - 1) / huge * huge)
        // One extra huge page so the memory can start on a 2 MiB boundary.
        let total = length + huge
        #if canImport(Glibc)
        let p = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        #else
        let p = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0)
        #endif
        guard let p, p != MAP_FAILED else { return nil }
        let aligned = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: p) + huge - 1) / huge * huge)!
        #if canImport(Glibc)
        _ = madvise(aligned, length, MADV_HUGEPAGE)
        #endif
        mapping = p
        mappingLength = total
        bytes = UnsafeRawBufferPointer(start: aligned, count: byteCount)
    }

    /// The memory for filling (only before it is shared: readers take `bytes`).
    public var mutableBase: UnsafeMutableRawPointer { UnsafeMutableRawPointer(mutating: bytes.baseAddress!) }

    /// For a file's read-only mapping of `count` bytes: when the file is worth it
    /// (`shouldCopy`), its copy, with the mapping unmapped; nil leaves the mapping to the caller.
    public static func replacing(mapping: UnsafeMutableRawPointer, count: Int) -> HugePageMemory? {
        guard shouldCopy(byteCount: count),
              let copy = HugePageMemory(copying: UnsafeRawBufferPointer(start: mapping, count: count)) else { return nil }
        munmap(mapping, count)
        return copy
    }

    deinit { munmap(mapping, mappingLength) }
}
