#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LinearAlgebra

/// A read-only memory mapping of a whole file, unmapped when the last reference goes away.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    /// Set when the file was copied to huge pages (`resident`); `base` then points into it.
    private let copy: HugePageMemory?

    /// `resident`: a large file searched at random (an index's codes) is copied to memory backed
    /// by huge pages (`HugePageMemory`) and its mapping dropped.
    init(path: String, resident: Bool = false) throws(VectorIndexError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw VectorIndexError(.io, "\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VectorIndexError(.io, "\(path): cannot stat (\(String(cString: strerror(errno))))") }
        size = Int(st.st_size)
        guard size > 0 else { throw VectorIndexError(.corruptFile, "\(path): empty file") }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw VectorIndexError(.io, "\(path): cannot map \(size) bytes (\(String(cString: strerror(errno))))")
        }
        if resident, let c = HugePageMemory.replacing(mapping: p, count: size) {
            copy = c
            base = c.bytes.baseAddress!
            return
        }
        copy = nil
        base = UnsafeRawPointer(p)
    }

    deinit { if copy == nil { munmap(UnsafeMutableRawPointer(mutating: base), size) } }
}
