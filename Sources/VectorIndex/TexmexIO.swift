#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Readers and writers of the TEXMEX / ANN-benchmark vector formats: `.fvecs` (float32) and
/// `.ivecs` (int32), each vector stored as an int32 dimension followed by its values.
public enum Texmex {
    /// Reads every vector of an `.fvecs` file: (row-major values, count, dimension).
    public static func readFvecs(_ path: String, limit: Int? = nil) throws(VectorIndexError) -> (values: [Float], count: Int, dimension: Int) {
        try read(path, limit: limit, as: Float.self)
    }

    /// Reads every vector of an `.ivecs` file: (row-major values, count, dimension).
    public static func readIvecs(_ path: String, limit: Int? = nil) throws(VectorIndexError) -> (values: [Int32], count: Int, dimension: Int) {
        try read(path, limit: limit, as: Int32.self)
    }

    public static func writeFvecs(_ path: String, values: [Float], dimension: Int) throws(VectorIndexError) {
        try write(path, words: values.map { Int32(bitPattern: $0.bitPattern) }, dimension: dimension)
    }

    public static func writeIvecs(_ path: String, values: [Int32], dimension: Int) throws(VectorIndexError) {
        try write(path, words: values, dimension: dimension)
    }

    private static func read<T: BitwiseCopyable & Numeric>(_ path: String, limit: Int?, as: T.Type) throws(VectorIndexError) -> ([T], Int, Int) {
        let file = try MappedFile(path: path)
        guard file.size % 4 == 0, file.size >= 8 else {
            throw VectorIndexError(.corruptFile, "\(path): \(file.size) bytes is not a TEXMEX vector file")
        }
        let words = file.base.bindMemory(to: Int32.self, capacity: file.size / 4)
        let d = Int(words[0])
        guard d > 0, (file.size / 4) % (d + 1) == 0 else {
            throw VectorIndexError(.corruptFile, "\(path): first vector claims dimension \(d), which does not divide the file (\(file.size) bytes)")
        }
        let total = (file.size / 4) / (d + 1)
        let n = min(total, limit ?? total)
        for i in 0..<n where Int(words[i * (d + 1)]) != d {
            throw VectorIndexError(.corruptFile, "\(path): vector \(i) has dimension \(words[i * (d + 1)]), expected \(d)")
        }
        var out = [T](repeating: 0, count: n * d)
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<n {
                UnsafeMutableRawPointer(o.baseAddress! + i * d).copyMemory(from: words + i * (d + 1) + 1, byteCount: d * 4)
            }
        }
        return (out, n, d)
    }

    private static func write(_ path: String, words: [Int32], dimension d: Int) throws(VectorIndexError) {
        guard d > 0, words.count % d == 0 else { throw .invalid("\(path): \(words.count) values are not rows of dimension \(d)") }
        let n = words.count / d
        var out = [Int32](repeating: Int32(d), count: n * (d + 1))
        for i in 0..<n { for j in 0..<d { out[i * (d + 1) + 1 + j] = words[i * d + j] } }
        try writeFile(path, out)
    }
}

/// Writes bytes to `path` through a temporary file and a rename, so readers never see a half
/// written file.
func writeFile<T: BitwiseCopyable>(_ path: String, _ array: [T]) throws(VectorIndexError) {
    let failure = array.withUnsafeBytes { b -> VectorIndexError? in
        do throws(VectorIndexError) { try writeFile(path, b) } catch { return error }
        return nil
    }
    if let failure { throw failure }
}

func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) throws(VectorIndexError) {
    let tmp = path + ".tmp-\(getpid())"
    guard let f = fopen(tmp, "wb") else {
        throw VectorIndexError(.io, "\(path): cannot create (\(String(cString: strerror(errno))))", retryable: true)
    }
    let written = bytes.count == 0 ? 0 : fwrite(bytes.baseAddress, 1, bytes.count, f)
    let flushed = fflush(f) == 0
    fclose(f)
    guard written == bytes.count, flushed else {
        unlink(tmp)
        throw VectorIndexError(.io, "\(path): short write (\(written) of \(bytes.count) bytes)", retryable: true)
    }
    guard rename(tmp, path) == 0 else {
        unlink(tmp)
        throw VectorIndexError(.io, "\(path): cannot rename into place (\(String(cString: strerror(errno))))")
    }
}
