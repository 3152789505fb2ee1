@testable import Ranking
import LinearAlgebra
import RankingModel
import TestSupport
import Testing
import VectorIndex

@Suite("Principal axes for the fresh and promoted sources' int8 rows")
struct EmbeddingProjectionTests {
    @Test("the symmetric eigensolver gives descending eigenvalues and orthonormal vectors with A v = λ v")
    func symmetricEigen() {
        var rng = SeededRandom(seed: 3)
        let n = 12
        var a = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { let v = Float(rng.gaussian()); a[i * n + j] = v; a[j * n + i] = v } }
        let (values, vectors) = BLAS.symmetricEigen(a, n: n)
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 >= $1 })
        for k in 0..<n {
            for l in 0..<n {
                var dot: Float = 0
                for j in 0..<n { dot += vectors[k * n + j] * vectors[l * n + j] }
                #expect(abs(dot - (k == l ? 1 : 0)) < 1e-4, "v\(k)·v\(l) = \(dot)")
            }
            for i in 0..<n {
                var av: Float = 0
                for j in 0..<n { av += a[i * n + j] * vectors[k * n + j] }
                #expect(abs(av - values[k] * vectors[k * n + i]) < 1e-3, "row \(i) of A v\(k)")
            }
        }
    }

    @Test("embeddings far from isotropic get a projection (small or isotropic catalogues none); every projected int8 dot is within the dropped axes' Cauchy-Schwarz bound plus int8's of the exact one, and for queries like the items the best eight approximate rows of a category hold its best four exact ones")
    func projectedDotsTrackExactOnes() throws {
        var spec = SyntheticBundle()
        spec.items = 3000
        spec.dimension = 32
        spec.lowRank = 6
        let (bundle, dir) = try spec.load()
        defer { withExtendedLifetime(dir) {} }
        let rows = (0..<Int32(bundle.itemCount)).map { $0 }
        let projection = try #require(EmbeddingProjection.fit(bundle: bundle, rows: rows, minimumRows: 0))
        #expect(projection.kept % 4 == 0 && projection.kept < 16 && projection.energy >= 0.9975)
        #expect(EmbeddingProjection.fit(bundle: bundle, rows: rows) == nil, "below minimumRows")
        var iso = SyntheticBundle()
        iso.items = 3000
        iso.dimension = 32
        let (isoBundle, isoDir) = try iso.load()
        defer { withExtendedLifetime(isoDir) {} }
        #expect(EmbeddingProjection.fit(bundle: isoBundle, rows: rows, minimumRows: 0) == nil, "isotropic")

        let d = spec.dimension, h = projection.kept
        let slice = FreshSlice(bundle: bundle, rows: rows, projection: projection)
        #expect(slice.embeddings.hasLead && slice.embeddings.dimension == h)
        // Each row's projected coordinates and the norm of what the projection drops.
        var coords = [Float](repeating: 0, count: 1 + h)
        func split(_ x: UnsafePointer<Float>) -> (head: [Float], tail: Float) {
            coords.withUnsafeMutableBufferPointer { projection.project(x, into: $0.baseAddress!) }
            var rest = (0..<d).map { x[$0] }
            for k in 0...h { for j in 0..<d { rest[j] -= coords[k] * projection.axes[k * d + j] } }
            return (coords, rest.reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        let parts = rows.map { split(bundle.embeddingPointer(row: Int(slice.rows[Int($0)]))) }
        var rng = SeededRandom(seed: 5)
        var dots = [Float](repeating: 0, count: rows.count)
        var held = 0, trials = 0
        for trial in 0..<60 {
            // Half the queries isotropic (the worst case for the dropped axes), half like the
            // items (mostly in the leading dimensions).
            let like = trial % 2 == 1
            var u = (0..<d).map { j in Float(rng.gaussian()) * (like && j >= spec.lowRank ? 0.1 : 1) }
            let norm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
            u = u.map { $0 / norm }
            let (qh, qTail) = u.withUnsafeBufferPointer { split($0.baseAddress!) }
            var query = Int8Query(dimension: h)
            qh.withUnsafeBufferPointer { query.set($0.baseAddress! + 1, lead: $0[0]) }
            dots.withUnsafeMutableBufferPointer { slice.embeddings.dots(query, rows: 0..<rows.count, into: $0.baseAddress!) }
            let qNorm = qh.dropFirst().reduce(0) { $0 + $1 * $1 }.squareRoot()
            var exact = [Float](repeating: 0, count: rows.count)
            for i in 0..<rows.count {
                let e = bundle.embeddingPointer(row: Int(slice.rows[i]))
                exact[i] = (0..<d).reduce(Float(0)) { $0 + u[$1] * e[$1] }
                let xNorm = parts[i].head.dropFirst().reduce(0) { $0 + $1 * $1 }.squareRoot()
                let int8Bound = qNorm * xNorm * (Float(h).squareRoot() * (1 / 254 + 1 / 128) + Float(h) / 32512)
                let bound = qTail * parts[i].tail + int8Bound + 1e-4
                #expect(abs(dots[i] - exact[i]) <= bound, "trial \(trial) row \(i): \(dots[i]) vs \(exact[i]), bound \(bound)")
            }
            guard like else { continue }
            for c in 0..<spec.categories {
                let members = (0..<rows.count).filter { bundle.items[Int(slice.rows[$0])].category == c }
                let bestExact = Set(members.sorted { exact[$0] > exact[$1] }.prefix(4))
                let bestApprox = Set(members.sorted { dots[$0] > dots[$1] }.prefix(8))
                held += bestExact.intersection(bestApprox).count
                trials += bestExact.count
            }
        }
        #expect(Double(held) / Double(trials) >= 0.99, "\(held) of \(trials)")
    }
}
