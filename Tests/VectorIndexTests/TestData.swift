import VectorIndex

/// Seeded synthetic data for the tests: `clusters` Gaussian blobs around random unit centers,
/// L2-normalised rows.
struct TestData {
    var vectors: [Float]
    var count: Int
    var dimension: Int
    var cluster: [Int]

    init(count: Int, dimension: Int, clusters: Int, spread: Float = 0.3, seed: UInt64 = 7) {
        var rng = SplitMix64(seed: seed)
        func gaussian() -> Float {
            let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(rng.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
        var centers = [Float](repeating: 0, count: clusters * dimension)
        for c in 0..<clusters {
            for j in 0..<dimension { centers[c * dimension + j] = gaussian() }
            normalize(&centers, row: c, dimension: dimension)
        }
        var v = [Float](repeating: 0, count: count * dimension)
        var labels = [Int](repeating: 0, count: count)
        for i in 0..<count {
            let c = Int(rng.next() % UInt64(clusters))
            labels[i] = c
            for j in 0..<dimension { v[i * dimension + j] = centers[c * dimension + j] + spread / Float(dimension).squareRoot() * gaussian() }
            normalize(&v, row: i, dimension: dimension)
        }
        vectors = v
        self.count = count
        self.dimension = dimension
        cluster = labels
    }

    func row(_ i: Int) -> [Float] { Array(vectors[(i * dimension)..<((i + 1) * dimension)]) }

    /// Exact top-k by inner product among rows accepted by `include`, best first (ties: lower id).
    func bruteForce(_ q: [Float], k: Int, include: (Int) -> Bool = { _ in true }) -> [Neighbor] {
        var all: [Neighbor] = []
        for i in 0..<count where include(i) {
            var s: Float = 0
            for j in 0..<dimension { s += q[j] * vectors[i * dimension + j] }
            all.append(Neighbor(id: Int64(i), score: s))
        }
        all.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
        return Array(all.prefix(k))
    }
}

func normalize(_ v: inout [Float], row: Int, dimension d: Int) {
    var n: Float = 0
    for j in 0..<d { n += v[row * d + j] * v[row * d + j] }
    n = n.squareRoot()
    if n > 0 { for j in 0..<d { v[row * d + j] /= n } }
}

#if canImport(Glibc)
import Glibc
#endif

func temporaryPath(_ name: String) -> String {
    "/tmp/feedrank-vi-test-\(getpid())-\(name)"
}

/// A trained index over `data` with ids = row numbers and labels = cluster % labelCount.
func makeIndex(_ data: TestData, nlist: Int = 16, m: Int = 4, bits: Int = 8, labelCount: Int = 5,
               seed: UInt64 = 99) throws -> IVFPQIndex {
    let index = try IVFPQIndex(configuration: IVFPQConfiguration(
        dimension: data.dimension, nlist: nlist, subquantizers: m, bitsPerCode: bits,
        coarseIterations: 6, pqIterations: 6, seed: seed))
    try data.vectors.withUnsafeBufferPointer { try index.train($0, count: data.count) }
    let labels = (0..<data.count).map { UInt16(data.cluster[$0] % labelCount) }
    try data.vectors.withUnsafeBufferPointer {
        try index.add($0, ids: (0..<data.count).map(Int64.init), labels: labels)
    }
    return index
}

/// The error a call throws, or nil if it succeeds.
func thrownError<T>(_ body: () throws(VectorIndexError) -> T) -> VectorIndexError? {
    do { _ = try body(); return nil } catch { return error }
}
