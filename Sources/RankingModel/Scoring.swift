#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LinearAlgebra

/// The contract's exact score: z = dot(u, e_i) / temperature + score_bias with the dot product
/// in float32, then score = sigmoid(z) in float64. The float32 dot is rounded once from a
/// float64 accumulation (`VectorMath.dotRounded`), so it does not depend on summation order and
/// the Python reference computes the same bits; z is then computed in float64 (a float32 z would
/// collapse near-equal items into ties). The pieces are public so a re-ranker can work on dots.
public struct Scoring: Sendable {
    public let temperature: Double
    public let scoreBias: Double
    public let dimension: Int

    public init(manifest: Manifest) {
        temperature = manifest.temperature
        scoreBias = manifest.scoreBias
        dimension = manifest.embeddingDimension
    }

    @inlinable
    public func dot(_ u: UnsafePointer<Float>, _ e: UnsafePointer<Float>) -> Float {
        VectorMath.dotRounded(u, e, count: dimension)
    }

    @inlinable
    public func logit(dot: Float) -> Double { Double(dot) / temperature + scoreBias }

    /// The logistic function in the form that never overflows: 1/(1+e^-z) for z >= 0,
    /// e^z/(1+e^z) below.
    @inlinable
    public static func sigmoid(_ z: Double) -> Double {
        // One exp of -|z| and a select (the same two forms): the sign of z is unpredictable
        // over a ranking's candidates, and the branch mispredicted about every other one.
        let e = exp(-abs(z))
        return (z >= 0 ? 1 : e) / (1 + e)
    }

    @inlinable
    public func score(dot: Float) -> Double { Self.sigmoid(logit(dot: dot)) }

    /// The score of bundle row `row` for user embedding `u` (D floats).
    public func score(user u: UnsafePointer<Float>, row: Int, in bundle: ModelBundle) -> Double {
        score(dot: dot(u, bundle.embeddingPointer(row: row)))
    }

    /// Scores of the given rows, in order, into `out`.
    @inlinable
    public func scores(user u: [Float], rows: some Collection<Int>, in bundle: ModelBundle,
                       into out: UnsafeMutableBufferPointer<Double>) {
        precondition(u.count == dimension, "Scoring: user embedding has \(u.count) entries, needs \(dimension)")
        precondition(out.count >= rows.count, "Scoring: output holds \(out.count), needs \(rows.count)")
        u.withUnsafeBufferPointer { ub in
            withExtendedLifetime(bundle) {
                for (i, row) in rows.enumerated() {
                    out[i] = score(dot: dot(ub.baseAddress!, bundle.embeddingPointer(row: row)))
                }
            }
        }
    }

    @inlinable
    public func scores(user u: [Float], rows: some Collection<Int>, in bundle: ModelBundle) -> [Double] {
        [Double](unsafeUninitializedCapacity: rows.count) { buf, n in
            scores(user: u, rows: rows, in: bundle, into: buf)
            n = rows.count
        }
    }
}
