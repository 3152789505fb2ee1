import Ranking
import RankingModel

/// Contract section 3: when a cached list (L1) may answer a non-`fresh` request.
public enum L1Policy {
    /// The cached entry answers the request if it has the same model version, at least
    /// `numItems` items, and none of its first `numItems` items was impressed by the user in
    /// the 24 h before `at`. Returns the answer (cached items and generated_at, the new
    /// request_id, trigger "request") or nil.
    public static func answer(cached: RankingResponse, request: RankingRequest, state: UserState?, at: Int64,
                              modelVersion: String, impressionWindowMs: Int64) -> RankingResponse? {
        guard cached.modelVersion == modelVersion, cached.items.count >= request.numItems else { return nil }
        let head = cached.items.prefix(request.numItems)
        if let state {
            let from = at - impressionWindowMs
            let shown = Set(state.impressions.lazy.filter { $0.ts >= from && $0.ts <= at }.map(\.itemId))
            if !shown.isEmpty && head.contains(where: { shown.contains($0.itemId) }) { return nil }
        }
        var out = cached
        out.items = Array(head)
        out.requestId = request.requestId
        out.trigger = .request
        return out
    }
}
