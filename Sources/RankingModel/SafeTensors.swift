/// A parsed safetensors file over a memory mapping: 8-byte little-endian header length, a JSON
/// header `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`,
/// then the raw little-endian tensor data. Every tensor's offsets are checked against its
/// dtype and shape and against the file's size when the header is read.
struct SafeTensors {
    struct Tensor {
        let name: String
        let dtype: String
        let shape: [Int]
        /// Absolute byte range in the file.
        let byteRange: Range<Int>

        var elementCount: Int { shape.reduce(1, *) }
    }

    let file: MappedFile
    let tensors: [String: Tensor]

    static let elementSizes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
        "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    ]

    init(file: MappedFile) throws(ModelError) {
        self.file = file
        let name = file.name
        func bad(_ m: String) -> ModelError { ModelError(.badTensor, "\(name): \(m)") }
        let size = file.bytes.count
        guard size >= 8 else { throw bad("file has \(size) bytes, too short for a safetensors header") }
        let headerLength = file.bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(size - 8) else {
            throw bad("header length \(headerLength) exceeds the file (\(size) bytes): truncated or not safetensors")
        }
        let dataStart = 8 + Int(headerLength)
        let header = UnsafeBufferPointer(rebasing: file.bytes.bindMemory(to: UInt8.self)[8..<dataStart])
        var tensors: [String: Tensor] = [:]
        do {
            var r = JSONReader(header)
            var obj = try r.beginObject()
            while let key = try r.nextKey(&obj) {
                let tname = key.string
                if tname == "__metadata__" { try r.skipValue(); continue }
                var dtype: String?, shape: [Int]?, offsets: [Int]?
                var o = try r.beginObject(field: tname)
                while let k = try r.nextKey(&o) {
                    if k.is("dtype") { dtype = try r.readString(field: "\(tname).dtype") }
                    else if k.is("shape") { shape = try Self.ints(&r, "\(tname).shape") }
                    else if k.is("data_offsets") { offsets = try Self.ints(&r, "\(tname).data_offsets") }
                    else { try r.skipValue() }
                }
                guard let dtype, let shape, let offsets else {
                    throw bad("tensor '\(tname)' lacks dtype, shape or data_offsets in the header")
                }
                guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                    throw bad("tensor '\(tname)' has invalid data_offsets \(offsets)")
                }
                guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(tname)' has a negative dimension in \(shape)") }
                let (count, overflow) = shape.reduce((1, false)) { acc, d in
                    let (m, o) = acc.0.multipliedReportingOverflow(by: d)
                    return (m, acc.1 || o)
                }
                if let es = Self.elementSizes[dtype] {
                    guard !overflow, offsets[1] - offsets[0] == count * es else {
                        throw bad("tensor '\(tname)' has \(offsets[1] - offsets[0]) data bytes, but \(dtype) \(shape) needs \(count * es)")
                    }
                }
                guard dataStart + offsets[1] <= size else {
                    throw bad("tensor '\(tname)' is truncated: its data ends at byte \(dataStart + offsets[1]) but the file has \(size) bytes")
                }
                guard tensors[tname] == nil else { throw bad("tensor '\(tname)' appears twice in the header") }
                tensors[tname] = Tensor(name: tname, dtype: dtype, shape: shape,
                                        byteRange: (dataStart + offsets[0])..<(dataStart + offsets[1]))
            }
            try r.expectEnd()
        } catch let e as JSONProblem {
            throw bad("header: \(e.text)")
        } catch let e as ModelError {
            throw e
        } catch {
            throw bad("header: \(error)")
        }
        self.tensors = tensors
    }

    /// The named tensor, checked for dtype and shape (`nil` in `shape` = any size).
    func tensor(_ tname: String, dtype: String, shape: [Int?]) throws(ModelError) -> Tensor {
        guard let t = tensors[tname] else { throw ModelError(.badTensor, "\(file.name): tensor '\(tname)' is missing") }
        guard t.dtype == dtype else {
            throw ModelError(.badTensor, "\(file.name): tensor '\(tname)' has dtype \(t.dtype), expected \(dtype)")
        }
        let matches = t.shape.count == shape.count && zip(t.shape, shape).allSatisfy { $1 == nil || $0 == $1 }
        guard matches else {
            let want = "[" + shape.map { $0.map(String.init) ?? "*" }.joined(separator: ", ") + "]"
            throw ModelError(.badTensor, "\(file.name): tensor '\(tname)' has shape \(t.shape), expected \(want)")
        }
        return t
    }

    /// A float32 tensor's data in place, or nil when it is not 4-byte aligned in the file.
    func mappedFloats(_ t: Tensor) -> UnsafeBufferPointer<Float>? {
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[t.byteRange])
        guard t.elementCount > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        guard Int(bitPattern: raw.baseAddress!) % MemoryLayout<Float>.alignment == 0 else { return nil }
        return raw.assumingMemoryBound(to: Float.self)
    }

    /// A float32 tensor's data copied out (little-endian decode, any alignment).
    func copyFloats(_ t: Tensor) -> [Float] {
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[t.byteRange])
        return (0..<t.elementCount).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }

    /// An int64 tensor's data copied out.
    func copyInt64s(_ t: Tensor) -> [Int64] {
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[t.byteRange])
        return (0..<t.elementCount).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
    }

    private static func ints(_ r: inout JSONReader, _ field: String) throws(JSONProblem) -> [Int] {
        var out: [Int] = []
        var arr = try r.beginArray(field: field)
        while try r.nextElement(&arr) { out.append(Int(try r.readInt64(field: field))) }
        return out
    }
}
