#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the user tower's input x (F = D + C + A + K floats) from a user state at ranking time
/// T (contract section 2). Everything is computed in Double and rounded to Float at the end.
///
/// With f = 2^(-(T - t_last)/half_life) (applied as is, even when T < t_last):
/// x[0:D] = f·S / |f·S| (zeros when 0); x[D:D+C] = f·c_k / (Σ_j |f·c_j| + 1);
/// x[D+C:D+C+A] = log1p(f·n_a); then the context: sin/cos of the UTC hour (period 24) and
/// weekday (Monday = 0, period 7), and a one-hot over the manifest's devices plus "unknown".
/// A cold start (no state) has zero activity features.
public struct FeatureBuilder: Sendable {
    public let manifest: Manifest
    private let d: Int, c: Int, a: Int
    private let halfLifeMs: Double

    public init(manifest: Manifest) {
        self.manifest = manifest
        d = manifest.embeddingDimension
        c = manifest.categoryCount
        a = manifest.actionCount
        halfLifeMs = manifest.halfLifeMilliseconds
    }

    /// F.
    public var featureCount: Int { manifest.featureCount }

    /// The device's one-hot slot: its index in the manifest's devices, or the last ("unknown")
    /// slot for nil or an unlisted name.
    public func deviceSlot(_ device: String?) -> Int {
        guard let device, let i = manifest.devices.firstIndex(of: device) else { return manifest.devices.count }
        return i
    }

    /// Writes x into `x[0..<F]`. Allocates nothing.
    public func build(state: UserState?, at t: Int64, device: String?, into x: UnsafeMutableBufferPointer<Float>) {
        let f = featureCount
        precondition(x.count >= f, "FeatureBuilder: x has \(x.count) entries, needs \(f)")
        if let state {
            precondition(state.matches(manifest), "FeatureBuilder: state of user \(state.userId) does not match the bundle's dimensions")
            let decay = pow(2.0, -elapsed(from: state.tLast, to: t) / halfLifeMs)
            state.embeddingSum.withUnsafeBufferPointer { s in
                var ss = 0.0
                for i in 0..<d { let v = decay * s[i]; ss += v * v }
                let norm = ss.squareRoot()
                if norm > 0 && norm.isFinite {
                    for i in 0..<d { x[i] = Float(decay * s[i] / norm) }
                } else {
                    for i in 0..<d { x[i] = 0 }
                }
            }
            state.categoryWeights.withUnsafeBufferPointer { cw in
                var total = 0.0
                for k in 0..<c { total += abs(decay * cw[k]) }
                let denom = total + 1
                for k in 0..<c { x[d + k] = Float(decay * cw[k] / denom) }
            }
            state.actionCounts.withUnsafeBufferPointer { n in
                for j in 0..<a { x[d + c + j] = Float(log1p(decay * n[j])) }
            }
        } else {
            for i in 0..<(d + c + a) { x[i] = 0 }
        }
        let base = d + c + a
        let (hour, weekday) = Self.utcHourAndWeekday(t)
        x[base + 0] = Float(sin(2 * Double.pi * Double(hour) / 24))
        x[base + 1] = Float(cos(2 * Double.pi * Double(hour) / 24))
        x[base + 2] = Float(sin(2 * Double.pi * Double(weekday) / 7))
        x[base + 3] = Float(cos(2 * Double.pi * Double(weekday) / 7))
        let slots = manifest.devices.count + 1
        for k in 0..<slots { x[base + 4 + k] = 0 }
        x[base + 4 + deviceSlot(device)] = 1
    }

    public func build(state: UserState?, at t: Int64, device: String?) -> [Float] {
        var x = [Float](repeating: 0, count: featureCount)
        x.withUnsafeMutableBufferPointer { build(state: state, at: t, device: device, into: $0) }
        return x
    }

    /// The integer UTC hour (0..<24) and weekday (Monday = 0) of a millisecond timestamp.
    public static func utcHourAndWeekday(_ t: Int64) -> (hour: Int, weekday: Int) {
        let dayMs: Int64 = 86_400_000
        var day = t / dayMs
        var inDay = t % dayMs
        if inDay < 0 { inDay += dayMs; day -= 1 }
        var weekday = (day + 3) % 7          // 1970-01-01 was a Thursday
        if weekday < 0 { weekday += 7 }
        return (Int(inDay / 3_600_000), Int(weekday))
    }
}
