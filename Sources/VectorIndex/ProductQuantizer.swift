import LinearAlgebra

/// Product quantizer: the D dimensions are cut into M sub-vectors of D/M dimensions, each
/// replaced by the index of its nearest centroid in a codebook of 2^bits entries learned by
/// k-means. Codes are handled unpacked here (one byte per sub-quantizer, value < 2^bits); the
/// inverted lists pack them for scanning.
public struct ProductQuantizer: Sendable, Equatable {
    public let dimension: Int
    public let subquantizers: Int
    public let bits: Int
    /// Centroids per codebook: 2^bits.
    public var ksub: Int { 1 << bits }
    /// Dimensions per sub-vector: D / M.
    public var dsub: Int { dimension / subquantizers }
    /// M × ksub × dsub floats: codebook m, centroid c starts at (m·ksub + c)·dsub.
    public internal(set) var codebooks: [Float]

    public init(dimension: Int, subquantizers: Int, bits: Int) throws(VectorIndexError) {
        guard dimension >= 1 else { throw .invalid("PQ: dimension must be >= 1, got \(dimension)") }
        guard subquantizers >= 1, dimension % subquantizers == 0 else {
            throw .invalid("PQ: dimension \(dimension) is not divisible by M = \(subquantizers)")
        }
        guard bits == 4 || bits == 8 else { throw .invalid("PQ: bits per code must be 4 or 8, got \(bits)") }
        self.dimension = dimension
        self.subquantizers = subquantizers
        self.bits = bits
        self.codebooks = [Float](repeating: 0, count: subquantizers * (1 << bits) * (dimension / subquantizers))
    }

    init(dimension: Int, subquantizers: Int, bits: Int, codebooks: [Float]) throws(VectorIndexError) {
        try self.init(dimension: dimension, subquantizers: subquantizers, bits: bits)
        guard codebooks.count == self.codebooks.count else {
            throw .invalid("PQ: \(codebooks.count) codebook floats, expected \(self.codebooks.count)")
        }
        self.codebooks = codebooks
    }

    /// Learns the M codebooks from n vectors (row-major n × D), k-means++ seeded per sub-space.
    public mutating func train(
        _ data: UnsafeBufferPointer<Float>, count n: Int, iterations: Int = 25, seed: UInt64,
        progress: ((Int, Int) -> Void)? = nil
    ) throws(VectorIndexError) {
        guard n >= ksub else { throw .invalid("PQ: \(n) training vectors for \(ksub) centroids per codebook") }
        let ds = dsub
        var sub = [Float](repeating: 0, count: n * ds)
        for m in 0..<subquantizers {
            for i in 0..<n { for t in 0..<ds { sub[i * ds + t] = data[i * dimension + m * ds + t] } }
            let km = KMeans(k: ksub, iterations: iterations, seed: seed &+ UInt64(m) &* 0x9E37_79B9,
                            initialization: .plusPlus)
            let result = try sub.withUnsafeBufferPointer { b throws(VectorIndexError) in
                try km.train(b, count: n, dimension: ds)
            }
            for j in 0..<(ksub * ds) { codebooks[m * ksub * ds + j] = result.centroids[j] }
            progress?(m + 1, subquantizers)
        }
    }

    /// Encodes n vectors (row-major n × D) into n·M bytes, one unpacked code per sub-quantizer.
    public func encode(_ data: UnsafeBufferPointer<Float>, count n: Int, into codes: UnsafeMutableBufferPointer<UInt8>) {
        precondition(data.count >= n * dimension && codes.count >= n * subquantizers, "PQ.encode: buffers too small")
        let ds = dsub, ks = ksub, mm = subquantizers, d = dimension
        let chunk = max(1, min(n, 65536))
        var scores = [Float](repeating: 0, count: chunk * ks)
        var halfNorms = [Float](repeating: 0, count: ks)
        codebooks.withUnsafeBufferPointer { cb in
            scores.withUnsafeMutableBufferPointer { s in
                for m in 0..<mm {
                    let book = UnsafeBufferPointer(rebasing: cb[(m * ks * ds)..<((m + 1) * ks * ds)])
                    for c in 0..<ks { halfNorms[c] = 0.5 * VectorMath.dot(book.baseAddress! + c * ds, book.baseAddress! + c * ds, count: ds) }
                    halfNorms.withUnsafeBufferPointer { h in
                        var start = 0
                        while start < n {
                            let rows = min(chunk, n - start)
                            // Sub-vectors of rows start..<start+rows: stride D, offset m·dsub.
                            let a = UnsafeBufferPointer(rebasing: data[(start * d + m * ds)..<((start + rows - 1) * d + m * ds + ds)])
                            BLAS.sgemm(.none, .transposed, m: rows, n: ks, k: ds,
                                       a: a, lda: d, b: book, ldb: ds, c: s, ldc: ks)
                            for r in 0..<rows {
                                let (best, _) = KMeans.argmaxShifted(s.baseAddress! + r * ks, h.baseAddress!, count: ks)
                                codes[(start + r) * mm + m] = UInt8(truncatingIfNeeded: best)
                            }
                            start += rows
                        }
                    }
                }
            }
        }
    }

    /// Reconstructs one vector from its M unpacked codes.
    public func decode(_ code: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        let ds = dsub, ks = ksub
        for m in 0..<subquantizers {
            let base = (m * ks + Int(code[m])) * ds
            for t in 0..<ds { out[m * ds + t] = codebooks[base + t] }
        }
    }

    /// table[m·ksub + c] = <query sub-vector m, centroid c of codebook m>: the per-query lookup
    /// table of asymmetric inner-product distances.
    public func innerProductTable(_ query: UnsafePointer<Float>, into table: UnsafeMutablePointer<Float>) {
        let ds = dsub, ks = ksub
        codebooks.withUnsafeBufferPointer { cb in
            let p = cb.baseAddress!
            for m in 0..<subquantizers {
                let q = query + m * ds
                let book = p + m * ks * ds
                let out = table + m * ks
                switch ds {
                case 1:
                    let qv = q[0]
                    for c in 0..<ks { out[c] = qv * book[c] }
                case 2:
                    let q0 = q[0], q1 = q[1]
                    for c in 0..<ks { out[c] = q0 * book[2 * c] + q1 * book[2 * c + 1] }
                case 4:
                    let q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3]
                    for c in 0..<ks {
                        let b = book + 4 * c
                        out[c] = (q0 * b[0] + q1 * b[1]) + (q2 * b[2] + q3 * b[3])
                    }
                default:
                    for c in 0..<ks { out[c] = VectorMath.dot(q, book + c * ds, count: ds) }
                }
            }
        }
    }
}
