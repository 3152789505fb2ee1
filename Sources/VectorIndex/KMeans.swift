import LinearAlgebra

/// Lloyd's k-means in L2 over row-major float vectors, seeded and deterministic.
///
/// Assignment runs through BLAS: argmin_c |x - c|² = argmax_c (x·c - |c|²/2), so each chunk of
/// points is one sgemm against the centroids followed by a row-wise argmax. A cluster that ends
/// an iteration empty is re-seeded by splitting a large one (as FAISS does).
public struct KMeans: Sendable {
    public enum Initialization: Sendable {
        /// k distinct points drawn uniformly (cheap; FAISS's default).
        case random
        /// k-means++ (D² sampling): better starts, O(n·k·d); for small k such as PQ codebooks.
        case plusPlus
    }

    public var k: Int
    public var iterations: Int
    public var seed: UInt64
    public var initialization: Initialization

    public init(k: Int, iterations: Int = 20, seed: UInt64 = 0x5EED, initialization: Initialization = .random) {
        self.k = k
        self.iterations = iterations
        self.seed = seed
        self.initialization = initialization
    }

    public struct Result: Sendable {
        /// k × d centroids, row-major.
        public var centroids: [Float]
        /// Mean squared distance of the points to their centroid after each iteration.
        public var objective: [Double]
        /// Clusters that were empty and had to be split, summed over iterations.
        public var emptyClusterSplits: Int
    }

    /// Trains on n points of dimension d (`data` holds n·d floats). `progress(iteration, total)`
    /// is called after every iteration.
    public func train(
        _ data: UnsafeBufferPointer<Float>, count n: Int, dimension d: Int,
        progress: ((Int, Int) -> Void)? = nil
    ) throws(VectorIndexError) -> Result {
        guard k >= 1 else { throw .invalid("k-means: k must be >= 1, got \(k)") }
        guard d >= 1 else { throw .invalid("k-means: dimension must be >= 1, got \(d)") }
        guard data.count >= n * d else {
            throw .invalid("k-means: \(data.count) floats cannot hold \(n) points of dimension \(d)")
        }
        guard n >= k else { throw .invalid("k-means: \(n) training points for \(k) clusters; need at least \(k)") }
        var rng = SplitMix64(seed: seed)
        var centroids = initialization == .plusPlus
            ? Self.plusPlusInit(data, n: n, d: d, k: k, rng: &rng)
            : Self.randomInit(data, n: n, d: d, k: k, rng: &rng)
        var assignment = [Int32](repeating: 0, count: n)
        var distances = [Float](repeating: 0, count: n)
        var objective: [Double] = []
        var splits = 0
        for it in 0..<max(1, iterations) {
            Self.assign(data, count: n, dimension: d, centroids: centroids, k: k,
                        into: &assignment, distances: &distances)
            objective.append(distances.reduce(0.0) { $0 + Double($1) } / Double(n))
            // Update: mean of the members (accumulated in Double for stability).
            var sums = [Double](repeating: 0, count: k * d)
            var counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let c = Int(assignment[i])
                counts[c] += 1
                let row = i * d, base = c * d
                for j in 0..<d { sums[base + j] += Double(data[row + j]) }
            }
            for c in 0..<k where counts[c] > 0 {
                let inv = 1.0 / Double(counts[c])
                for j in 0..<d { centroids[c * d + j] = Float(sums[c * d + j] * inv) }
            }
            splits += Self.splitEmptyClusters(&centroids, counts: &counts, d: d, n: n, rng: &rng)
            progress?(it + 1, max(1, iterations))
        }
        return Result(centroids: centroids, objective: objective, emptyClusterSplits: splits)
    }

    // MARK: Assignment

    /// Nearest centroid (L2) of every point, with its squared distance.
    public static func assign(
        _ data: UnsafeBufferPointer<Float>, count n: Int, dimension d: Int,
        centroids: [Float], k: Int,
        into assignment: inout [Int32], distances: inout [Float]
    ) {
        precondition(centroids.count == k * d, "assign: \(centroids.count) centroid floats for \(k) × \(d)")
        if assignment.count < n { assignment = [Int32](repeating: 0, count: n) }
        if distances.count < n { distances = [Float](repeating: 0, count: n) }
        var halfNorms = [Float](repeating: 0, count: k)
        centroids.withUnsafeBufferPointer { c in
            for j in 0..<k { halfNorms[j] = 0.5 * VectorMath.dot(c.baseAddress! + j * d, c.baseAddress! + j * d, count: d) }
        }
        let chunk = max(1, min(n, 4_194_304 / max(1, k)))
        var scores = [Float](repeating: 0, count: chunk * k)
        centroids.withUnsafeBufferPointer { c in
            scores.withUnsafeMutableBufferPointer { s in
                halfNorms.withUnsafeBufferPointer { h in
                    assignment.withUnsafeMutableBufferPointer { a in
                        distances.withUnsafeMutableBufferPointer { dist in
                            var start = 0
                            while start < n {
                                let rows = min(chunk, n - start)
                                let x = UnsafeBufferPointer(rebasing: data[(start * d)..<((start + rows) * d)])
                                BLAS.sgemm(.none, .transposed, m: rows, n: k, k: d,
                                           a: x, lda: d, b: c, ldb: d, c: s, ldc: k)
                                for r in 0..<rows {
                                    let (best, value) = argmaxShifted(s.baseAddress! + r * k, h.baseAddress!, count: k)
                                    let xp = data.baseAddress! + (start + r) * d
                                    let xx = VectorMath.dot(xp, xp, count: d)
                                    a[start + r] = Int32(best)
                                    dist[start + r] = max(0, xx - 2 * value)
                                }
                                start += rows
                            }
                        }
                    }
                }
            }
        }
    }

    /// argmax_j (s[j] - h[j]), first index on ties; returns the index and the maximum.
    @inline(__always)
    static func argmaxShifted(_ s: UnsafePointer<Float>, _ h: UnsafePointer<Float>, count k: Int) -> (Int, Float) {
        var best = 0
        var bestValue = -Float.infinity
        var j = 0
        if k >= 8 {
            var bv = SIMD8<Float>(repeating: -.infinity)
            var bi = SIMD8<Int32>(repeating: 0)
            var idx = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
            while j + 8 <= k {
                let v = UnsafeRawPointer(s + j).loadUnaligned(as: SIMD8<Float>.self)
                    - UnsafeRawPointer(h + j).loadUnaligned(as: SIMD8<Float>.self)
                let better = v .> bv
                bv.replace(with: v, where: better)
                bi.replace(with: idx, where: better)
                idx &+= 8
                j += 8
            }
            for l in 0..<8 where bv[l] > bestValue || (bv[l] == bestValue && Int(bi[l]) < best) {
                bestValue = bv[l]
                best = Int(bi[l])
            }
        }
        while j < k {
            let v = s[j] - h[j]
            if v > bestValue { bestValue = v; best = j }
            j += 1
        }
        return (best, bestValue)
    }

    // MARK: Initialisation and empty clusters

    static func randomInit(_ data: UnsafeBufferPointer<Float>, n: Int, d: Int, k: Int, rng: inout SplitMix64) -> [Float] {
        let picks = rng.sample(k, from: n)
        var c = [Float](repeating: 0, count: k * d)
        for (j, i) in picks.enumerated() { for t in 0..<d { c[j * d + t] = data[i * d + t] } }
        return c
    }

    static func plusPlusInit(_ data: UnsafeBufferPointer<Float>, n: Int, d: Int, k: Int, rng: inout SplitMix64) -> [Float] {
        var c = [Float](repeating: 0, count: k * d)
        var nearest = [Float](repeating: .infinity, count: n)
        var pick = rng.index(below: n)
        for j in 0..<k {
            for t in 0..<d { c[j * d + t] = data[pick * d + t] }
            if j == k - 1 { break }
            var total = 0.0
            for i in 0..<n {
                var dist: Float = 0
                for t in 0..<d { let e = data[i * d + t] - c[j * d + t]; dist += e * e }
                if dist < nearest[i] { nearest[i] = dist }
                total += Double(nearest[i])
            }
            if total <= 0 { pick = rng.index(below: n); continue }
            var target = Double(rng.next() >> 11) / Double(1 << 53) * total
            pick = n - 1
            for i in 0..<n {
                target -= Double(nearest[i])
                if target < 0 { pick = i; break }
            }
        }
        return c
    }

    /// Re-seeds each empty cluster by splitting a cluster chosen with probability proportional
    /// to its size: both halves get the parent centroid nudged in opposite directions.
    static func splitEmptyClusters(_ c: inout [Float], counts: inout [Int], d: Int, n: Int, rng: inout SplitMix64) -> Int {
        let k = counts.count
        var splits = 0
        let eps: Float = 1.0 / 1024
        for empty in 0..<k where counts[empty] == 0 {
            var donor = 0
            // Walk sizes until a uniformly drawn member falls in a cluster of size > 1.
            while true {
                var r = rng.index(below: n)
                donor = 0
                while r >= counts[donor] { r -= counts[donor]; donor += 1 }
                if counts[donor] > 1 { break }
            }
            for t in 0..<d {
                let v = c[donor * d + t]
                let sign: Float = t % 2 == 0 ? 1 : -1
                c[empty * d + t] = v * (1 + sign * eps)
                c[donor * d + t] = v * (1 - sign * eps)
            }
            counts[empty] = counts[donor] / 2
            counts[donor] -= counts[empty]
            splits += 1
        }
        return splits
    }
}
