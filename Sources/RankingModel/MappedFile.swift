#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LinearAlgebra

/// A read-only memory mapping of a whole file. The mapping lives as long as this object;
/// pointers into `bytes` must not outlive it.
final class MappedFile: @unchecked Sendable {
    /// The name used in error messages (e.g. "weights.safetensors").
    let name: String
    let path: String
    /// The file's bytes (empty for an empty file).
    let bytes: UnsafeRawBufferPointer
    /// Set when the file was copied to huge pages (`resident`); `bytes` then points into it.
    private let copy: HugePageMemory?
    /// Whether `bytes` is this object's own mapping of the file.
    private var mapped: Bool { copy == nil && bytes.count > 0 }

    /// `resident`: a large file read at random (the embedding matrix) is copied to memory backed
    /// by huge pages (`HugePageMemory`) and its mapping dropped.
    init(path: String, name: String, resident: Bool = false) throws(ModelError) {
        self.name = name
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw ModelError(.missingFile, "\(name): no such file (\(path))") }
            throw ModelError(.unreadableFile, "\(name): cannot open \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ModelError(.unreadableFile, "\(name): cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ModelError(.unreadableFile, "\(name): \(path) is not a regular file")
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            copy = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw ModelError(.unreadableFile, "\(name): cannot map \(path): \(String(cString: strerror(errno)))")
        }
        if resident, let c = HugePageMemory.replacing(mapping: p, count: size) {
            copy = c
            bytes = c.bytes
            return
        }
        copy = nil
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// Hints the kernel to read ahead (the whole file will be scanned).
    func adviseSequential() {
        if mapped { _ = madvise(UnsafeMutableRawPointer(mutating: bytes.baseAddress!), bytes.count, MADV_SEQUENTIAL) }
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress!), bytes.count) }
    }
}
