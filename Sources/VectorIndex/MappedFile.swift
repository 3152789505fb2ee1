#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when the last reference goes away.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int
    let path: String

    init(path: String) throws(VectorIndexError) {
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
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}
