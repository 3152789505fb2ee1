import Testing
@testable import VectorIndex

@Suite("k-means and product quantization")
struct QuantizerTests {
    @Test("k-means finds well-separated clusters and its objective never increases")
    func kmeansConvergesOnSeparableData() throws {
        // Four tight blobs at the corners of a square in 2-D.
        let centers: [[Float]] = [[0, 0], [10, 0], [0, 10], [10, 10]]
        var rng = SplitMix64(seed: 3)
        var data: [Float] = []
        for i in 0..<400 {
            let c = centers[i % 4]
            for j in 0..<2 { data.append(c[j] + Float(Int(rng.next() % 1000) - 500) / 1000) }
        }
        let result = try data.withUnsafeBufferPointer {
            try KMeans(k: 4, iterations: 15, seed: 1, initialization: .plusPlus).train($0, count: 400, dimension: 2)
        }
        for c in centers {
            var nearest = Float.infinity
            for j in 0..<4 {
                let dx = result.centroids[j * 2] - c[0], dy = result.centroids[j * 2 + 1] - c[1]
                nearest = min(nearest, dx * dx + dy * dy)
            }
            #expect(nearest < 0.05, "no centroid near \(c)")
        }
        for (a, b) in zip(result.objective, result.objective.dropFirst()) { #expect(b <= a * 1.000001) }
        #expect(result.objective.last! < 0.2)
    }

    @Test("k-means splits a cluster when one ends up empty")
    func kmeansSplitsEmptyClusters() throws {
        // 3 distinct points repeated, k = 3, random init may pick duplicates: every centroid
        // must still end up owning points (no empty cluster survives).
        let data: [Float] = Array(repeating: [0, 0, 5, 5, 9, 1], count: 20).flatMap { $0 }
        let result = try data.withUnsafeBufferPointer {
            try KMeans(k: 3, iterations: 10, seed: 11).train($0, count: 60, dimension: 2)
        }
        var assignment = [Int32](), dist = [Float]()
        data.withUnsafeBufferPointer {
            KMeans.assign($0, count: 60, dimension: 2, centroids: result.centroids, k: 3, into: &assignment, distances: &dist)
        }
        #expect(Set(assignment).count == 3)
        #expect(dist.max()! < 1e-3)
    }

    @Test("k-means rejects fewer points than clusters")
    func kmeansRejectsTooFewPoints() {
        let data: [Float] = [1, 2, 3]
        #expect(throws: VectorIndexError.self) {
            try data.withUnsafeBufferPointer { try KMeans(k: 4).train($0, count: 3, dimension: 1) }
        }
    }

    @Test("PQ: a vector made of codebook centroids encodes to them; others decode within bounds",
          arguments: [8, 4])
    func pqEncodeDecodeErrorBounds(bits: Int) throws {
        let data = TestData(count: 1500, dimension: 16, clusters: 20, spread: 0.5)
        var pq = try ProductQuantizer(dimension: 16, subquantizers: 4, bits: bits)
        try data.vectors.withUnsafeBufferPointer { try pq.train($0, count: data.count, iterations: 8, seed: 5) }
        var codes = [UInt8](repeating: 0, count: data.count * 4)
        data.vectors.withUnsafeBufferPointer { v in codes.withUnsafeMutableBufferPointer { pq.encode(v, count: data.count, into: $0) } }
        #expect(codes.allSatisfy { Int($0) < pq.ksub })
        // Reconstruction error: far below the data's own energy (rows have unit norm).
        var mse: Double = 0
        var decoded = [Float](repeating: 0, count: 16)
        for i in 0..<data.count {
            codes.withUnsafeBufferPointer { c in decoded.withUnsafeMutableBufferPointer { pq.decode(c.baseAddress! + i * 4, into: $0.baseAddress!) } }
            for j in 0..<16 { let e = Double(decoded[j] - data.vectors[i * 16 + j]); mse += e * e }
            // Each sub-vector's code is its nearest centroid: no other centroid is closer.
            for m in 0..<4 {
                let chosen = Int(codes[i * 4 + m])
                func dist(_ c: Int) -> Float {
                    var s: Float = 0
                    for t in 0..<4 {
                        let e = data.vectors[i * 16 + m * 4 + t] - pq.codebooks[(m * pq.ksub + c) * 4 + t]
                        s += e * e
                    }
                    return s
                }
                let best = (0..<pq.ksub).map(dist).min()!
                #expect(dist(chosen) <= best + 1e-6)
            }
        }
        mse /= Double(data.count)
        #expect(mse < (bits == 8 ? 0.12 : 0.35), "mean squared reconstruction error \(mse) of unit vectors")
        // A vector assembled from centroids round-trips exactly.
        var assembled = [Float](repeating: 0, count: 16)
        let chosen = [1, 3, 0, 2]
        for m in 0..<4 { for t in 0..<4 { assembled[m * 4 + t] = pq.codebooks[(m * pq.ksub + chosen[m]) * 4 + t] } }
        var code = [UInt8](repeating: 0, count: 4)
        assembled.withUnsafeBufferPointer { v in code.withUnsafeMutableBufferPointer { pq.encode(v, count: 1, into: $0) } }
        #expect(code.map(Int.init) == chosen)
    }

    @Test("ADC: the lookup-table sum equals the inner product with the decoded vector")
    func adcEqualsDecodedInnerProduct() throws {
        let data = TestData(count: 2000, dimension: 16, clusters: 10)
        var pq = try ProductQuantizer(dimension: 16, subquantizers: 8, bits: 8)
        try data.vectors.withUnsafeBufferPointer { try pq.train($0, count: data.count, iterations: 10, seed: 2) }
        let q = TestData(count: 5, dimension: 16, clusters: 3, seed: 99)
        var table = [Float](repeating: 0, count: 8 * 256)
        var code = [UInt8](repeating: 0, count: 8)
        var decoded = [Float](repeating: 0, count: 16)
        for qi in 0..<5 {
            let query = q.row(qi)
            query.withUnsafeBufferPointer { p in table.withUnsafeMutableBufferPointer { pq.innerProductTable(p.baseAddress!, into: $0.baseAddress!) } }
            for i in stride(from: 0, to: 2000, by: 97) {
                data.vectors.withUnsafeBufferPointer { v in
                    code.withUnsafeMutableBufferPointer { pq.encode(UnsafeBufferPointer(rebasing: v[(i * 16)..<((i + 1) * 16)]), count: 1, into: $0) }
                }
                code.withUnsafeBufferPointer { c in decoded.withUnsafeMutableBufferPointer { pq.decode(c.baseAddress!, into: $0.baseAddress!) } }
                let adc = (0..<8).map { table[$0 * 256 + Int(code[$0])] }.reduce(0, +)
                let exact = zip(query, decoded).map { $0 * $1 }.reduce(0, +)
                #expect(abs(adc - exact) < 1e-5)
            }
        }
    }

    @Test("4-bit fast-scan kernel: 16-bit sums equal the quantized-table sums, dequantized within the rounding bound")
    func fastScanKernelMatchesScalarSums() throws {
        let m = 8
        var rng = SplitMix64(seed: 17)
        var table = [Float](repeating: 0, count: m * 16)
        for i in table.indices { table[i] = Float(Int(rng.next() % 2001) - 1000) / 1000 }
        var q8 = [UInt8](repeating: 0, count: m * 16)
        let (bias, inv) = table.withUnsafeBufferPointer { t in q8.withUnsafeMutableBufferPointer { FastScan.quantize(t.baseAddress!, subquantizers: m, into: $0.baseAddress!) } }
        // 40 entries: one full block and a partial one.
        let n = 40
        var unpackedCodes = [UInt8](repeating: 0, count: n * m)
        for i in unpackedCodes.indices { unpackedCodes[i] = UInt8(rng.next() % 16) }
        let layout = CodeLayout.fastScan4(subquantizers: m)
        var packed = [UInt8](repeating: 0, count: layout.codeBytes(count: n))
        unpackedCodes.withUnsafeBufferPointer { u in packed.withUnsafeMutableBufferPointer { layout.pack(u.baseAddress!, count: n, into: $0.baseAddress!) } }
        var kernelTable = [UInt8](repeating: 0, count: FastScan.kernelTableBytes(subquantizers: m))
        q8.withUnsafeBufferPointer { q in kernelTable.withUnsafeMutableBufferPointer { FastScan.kernelTable(q.baseAddress!, subquantizers: m, into: $0.baseAddress!) } }
        var sink = [UInt8](repeating: 0, count: 32)
        for block in 0..<2 {
            let sums: [UInt16] = packed.withUnsafeBufferPointer { p in
                sink.withUnsafeMutableBytes { s in
                    let (even, odd) = kernelTable.withUnsafeBufferPointer {
                        FastScan.accumulate($0.baseAddress!, block: p.baseAddress! + block * 16 * m, subquantizers: m, sink: s.baseAddress!)
                    }
                    var out = [UInt16](repeating: 0, count: 32)
                    for lane in 0..<16 {
                        out[FastScan.entry(ofLane: lane)] = even[lane]
                        out[FastScan.entry(ofLane: 16 + lane)] = odd[lane]
                    }
                    return out
                }
            }
            for j in 0..<32 where block * 32 + j < n {
                let i = block * 32 + j
                let expected = (0..<m).map { Int(q8[$0 * 16 + Int(unpackedCodes[i * m + $0])]) }.reduce(0, +)
                #expect(Int(sums[j]) == expected, "entry \(i)")
                let approx = bias + Float(sums[j]) * inv
                let exact = (0..<m).map { table[$0 * 16 + Int(unpackedCodes[i * m + $0])] }.reduce(0, +)
                #expect(abs(approx - exact) <= Float(m) * 0.5 * inv + 1e-5)
            }
            // Packed codes unpack back to the originals.
            var code = [UInt8](repeating: 0, count: m)
            for j in 0..<32 where block * 32 + j < n {
                packed.withUnsafeBufferPointer { p in code.withUnsafeMutableBufferPointer { layout.unpack(p.baseAddress!, entry: block * 32 + j, into: $0.baseAddress!) } }
                #expect(code == Array(unpackedCodes[((block * 32 + j) * m)..<((block * 32 + j + 1) * m)]))
            }
        }
    }

    @Test("4-bit fast-scan: zeroing the lanes outside an entry range keeps exactly the lanes whose entry is inside it")
    func zeroingLanesKeepsTheEntriesInRange() {
        let even = SIMD16<UInt16>((0..<16).map { UInt16(100 + $0) }), odd = SIMD16<UInt16>((0..<16).map { UInt16(200 + $0) })
        for lo in -3...34 {
            for hi in lo...35 {
                let (e, o) = FastScan.zeroingLanes(even, odd, outside: lo..<hi)
                for lane in 0..<32 {
                    let inside = (lo..<hi).contains(FastScan.entry(ofLane: lane))
                    let got = lane < 16 ? e[lane] : o[lane - 16], was = lane < 16 ? even[lane] : odd[lane - 16]
                    #expect(got == (inside ? was : 0), "lane \(lane) range \(lo)..<\(hi)")
                }
            }
        }
    }
}
