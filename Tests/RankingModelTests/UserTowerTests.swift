import Foundation
import Testing
import LinearAlgebra
@testable import RankingModel

@Suite("User tower and score")
struct UserTowerTests {
    let bundle: ModelBundle
    let dir: TempDir

    init() throws {
        (bundle, dir) = try TestBundle.make(items: 8, seed: 5).load()
    }

    /// The tower written out naively in Double.
    func naive(_ x: [Float]) -> [Double] {
        var a = x.map(Double.init)
        for (k, l) in bundle.tower.layers.enumerated() {
            var y = [Double](repeating: 0, count: l.outputs)
            for o in 0..<l.outputs {
                var s = Double(l.bias[o])
                for i in 0..<l.inputs { s += Double(l.weight[o * l.inputs + i]) * a[i] }
                y[o] = k < bundle.tower.layers.count - 1 ? max(0, s) : s
            }
            a = y
        }
        let n = a.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return a.map { $0 / n }
    }

    func randomX(_ rng: inout TestRandom) -> [Float] {
        (0..<bundle.tower.inputWidth).map { _ in Float(rng.normal()) }
    }

    @Test("one user (sgemv) matches a naive Double tower and has unit norm")
    func single() {
        var rng = TestRandom(seed: 11)
        for _ in 0..<50 {
            let x = randomX(&rng)
            let u = bundle.tower.embed(x)
            let want = naive(x)
            #expect(zip(u, want).allSatisfy { abs(Double($0) - $1) < 1e-5 })
            #expect(abs(VectorMath.norm(u.withUnsafeBufferPointer { $0 }) - 1) < 1e-6)
        }
    }

    @Test("a batch (sgemm) equals one user at a time")
    func batchEqualsSingle() {
        var rng = TestRandom(seed: 12)
        for rows in [1, 2, 7, 33] {
            let xs = (0..<rows).map { _ in randomX(&rng) }
            let batch = bundle.tower.embedBatch(Matrix(rows: rows, columns: bundle.tower.inputWidth, values: xs.flatMap { $0 }))
            for r in 0..<rows {
                let single = bundle.tower.embed(xs[r])
                let diff = zip(batch.row(r), single).map { abs($0 - $1) }.max()!
                #expect(diff < 1e-5, "row \(r) of \(rows)")
            }
        }
    }

    @Test("UserEncoder: features + tower per user and per batch agree, scratch is reused")
    func encoder() throws {
        let enc = UserEncoder(bundle: bundle)
        let updater = StateUpdater(bundle: bundle)
        var users: [UserContext] = [UserContext(state: nil, at: 1_795_700_000_000, device: "web")]
        for i in 0..<9 {
            var s: UserState?
            for j in 0..<(i + 1) {
                _ = try updater.apply(ActivityEvent(eventId: "e\(j)", userId: Int64(i), itemId: 1000 + Int64((i + j) % 8),
                                                    action: Action.allCases[j % 7], ts: 1_795_000_000_000 + Int64(j) * 3_600_000), to: &s)
            }
            users.append(UserContext(state: s, at: 1_795_700_000_000 + Int64(i) * 1_000_000, device: i % 2 == 0 ? "ios" : nil))
        }
        let batch = enc.embedBatch(users)
        for (r, user) in users.enumerated() {
            let u = enc.embed(state: user.state, at: user.at, device: user.device)
            let x = FeatureBuilder(manifest: bundle.manifest).build(state: user.state, at: user.at, device: user.device)
            #expect(u == bundle.tower.embed(x))
            #expect(zip(batch.row(r), u).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }

    @Test("score = sigmoid(Double(float32 dot) / temperature + bias) in Double; the dot is rounded once from float64")
    func scoring() {
        let sc = Scoring(manifest: bundle.manifest)
        #expect(sc.logit(dot: 0.1) == Double(Float(0.1)) / 0.05 + -1.5)
        #expect(sc.score(dot: 0.1) == 1 / (1 + exp(-(Double(Float(0.1)) / 0.05 + -1.5))))
        #expect(Scoring.sigmoid(0) == 0.5)
        #expect(Scoring.sigmoid(-700) > 0 && Scoring.sigmoid(-700) < 1e-300 && Scoring.sigmoid(-1e6) == 0)
        #expect(Scoring.sigmoid(800) == 1)
        // The same bits as the two-branch form 1/(1+e^-z) for z >= 0, e^z/(1+e^z) below.
        for i in -4000...4000 {
            let z = Double(i) / 97.3
            let twoBranch = z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
            #expect(Scoring.sigmoid(z).bitPattern == twoBranch.bitPattern, "z \(z)")
        }
        let u = bundle.tower.embed([Float](repeating: 0.3, count: bundle.tower.inputWidth))
        let all = sc.scores(user: u, rows: [7, 0, 3], in: bundle)
        for (i, row) in [7, 0, 3].enumerated() {
            let e = bundle.embedding(row: row)
            let exact = Float(zip(u, e).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
            let dot = u.withUnsafeBufferPointer { up in e.withUnsafeBufferPointer { sc.dot(up.baseAddress!, $0.baseAddress!) } }
            #expect(dot == exact)
            #expect(all[i] == sc.score(dot: dot))
            #expect(u.withUnsafeBufferPointer { sc.score(user: $0.baseAddress!, row: row, in: bundle) } == all[i])
        }
    }
}
