#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Applies activity events to user states with the contract's decayed-sum rule.
///
/// In order (t >= t_last): g = 2^(-(t - t_last)/half_life); S = g·S + w·e, c = g·c,
/// c[cat] += w (item known); n = g·n, n[a] += 1; t_last = t.
/// Out of order (t < t_last): g' = 2^(-(t_last - t)/half_life); S += g'·w·e,
/// c[cat] += g'·w (item known), n[a] += g'; t_last unchanged.
/// All in Double; e is the item's float32 embedding widened to Double.
public struct StateUpdater: Sendable {
    public enum Outcome: Sendable, Equatable {
        case applied
        /// Applied, but the item is not in the bundle: only decay, n and impressions changed.
        case appliedUnknownItem
        /// Not applied: the event id was seen recently, or the source offset is not past `src`.
        case duplicate
    }

    public let bundle: ModelBundle
    private let halfLifeMs: Double

    public init(bundle: ModelBundle) {
        self.bundle = bundle
        self.halfLifeMs = bundle.manifest.halfLifeMilliseconds
    }

    /// Whether the event was already applied to `state` (a redelivery).
    public static func isDuplicate(_ event: ActivityEvent, of state: UserState, source: SourcePosition?) -> Bool {
        if let source, let src = state.source, src.partition == source.partition, source.offset <= src.offset {
            return true
        }
        return state.recentEventIds.contains(event.eventId)
    }

    /// Applies `event` (read from `source`, when it came from Kafka) to the user's state,
    /// creating it on the user's first event.
    public func apply(_ event: ActivityEvent, to state: inout UserState?, source: SourcePosition? = nil) throws(ModelError) -> Outcome {
        // Move the state out so its arrays stay uniquely referenced (no copy-on-write).
        var s = state ?? UserState(userId: event.userId, firstEventAt: event.ts, manifest: bundle.manifest)
        state = nil
        defer { state = s }
        return try apply(event, to: &s, source: source)
    }

    public func apply(_ event: ActivityEvent, to state: inout UserState, source: SourcePosition? = nil) throws(ModelError) -> Outcome {
        guard event.userId == state.userId else {
            throw ModelError(.userMismatch, "event \(event.eventId) of user \(event.userId) applied to the state of user \(state.userId)")
        }
        let manifest = bundle.manifest
        guard state.matches(manifest) else {
            throw ModelError(.invalidState, "state of user \(state.userId) has S/c/n lengths \(state.embeddingSum.count)/\(state.categoryWeights.count)/\(state.actionCounts.count), the bundle needs \(manifest.embeddingDimension)/\(manifest.categoryCount)/\(manifest.actionCount)")
        }
        if Self.isDuplicate(event, of: state, source: source) { return .duplicate }

        let w = manifest.weight(of: event.action)
        let slot = manifest.slot(of: event.action)
        let row = bundle.row(of: event.itemId)
        let d = manifest.embeddingDimension

        if event.ts >= state.tLast {
            let g = decayFactor(elapsed: elapsed(from: state.tLast, to: event.ts))
            if g != 1 {
                Self.scale(&state.embeddingSum, by: g)
                Self.scale(&state.categoryWeights, by: g)
                Self.scale(&state.actionCounts, by: g)
            }
            if let row {
                let e = bundle.embeddingPointer(row: row)
                state.embeddingSum.withUnsafeMutableBufferPointer { s in
                    for i in 0..<d { s[i] = s[i] + w * Double(e[i]) }
                }
                state.categoryWeights[Int(bundle.categoryOfRow[row])] += w
            }
            state.actionCounts[slot] += 1
            state.tLast = event.ts
        } else {
            let g = decayFactor(elapsed: elapsed(from: event.ts, to: state.tLast))
            if let row {
                let e = bundle.embeddingPointer(row: row)
                let scale = g * w
                state.embeddingSum.withUnsafeMutableBufferPointer { s in
                    for i in 0..<d { s[i] += scale * Double(e[i]) }
                }
                state.categoryWeights[Int(bundle.categoryOfRow[row])] += g * w
            }
            state.actionCounts[slot] += g
        }

        if event.action == .impression {
            state.impressions.append(Impression(itemId: event.itemId, ts: event.ts))
        }
        let cutoff = state.tLast - UserState.impressionRetentionMs
        if state.impressions.contains(where: { $0.ts < cutoff }) {
            state.impressions.removeAll { $0.ts < cutoff }
        }
        if let source { state.source = source }
        state.recentEventIds.append(event.eventId)
        if state.recentEventIds.count > UserState.recentEventIdLimit {
            state.recentEventIds.removeFirst(state.recentEventIds.count - UserState.recentEventIdLimit)
        }
        return row == nil ? .appliedUnknownItem : .applied
    }

    /// 2^(-elapsed/half_life), the same expression the Python reference evaluates.
    @inline(__always)
    func decayFactor(elapsed: Double) -> Double { pow(2.0, -elapsed / halfLifeMs) }

    @inline(__always)
    private static func scale(_ v: inout [Double], by g: Double) {
        v.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = g * b[i] } }
    }
}

/// (b - a) in ms as Double, exact for any realistic timestamps and safe from overflow.
@inline(__always)
func elapsed(from a: Int64, to b: Int64) -> Double {
    let (diff, overflow) = b.subtractingReportingOverflow(a)
    return overflow ? Double(b) - Double(a) : Double(diff)
}
