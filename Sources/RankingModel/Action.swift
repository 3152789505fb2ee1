/// A user-activity action (contract section 1). A bundle's manifest gives each one a weight and
/// its slot in the count vector `n`.
public enum Action: String, Sendable, CaseIterable, Hashable {
    case impression, click, like, comment, share, dwell, hide

    /// Stable 0..<7 index (declaration order), for per-action lookup tables.
    public var ordinal: Int {
        switch self {
        case .impression: 0
        case .click: 1
        case .like: 2
        case .comment: 3
        case .share: 4
        case .dwell: 5
        case .hide: 6
        }
    }

    /// Engagement that triggers an event-driven re-rank (contract section 3).
    public var triggersRefresh: Bool {
        switch self {
        case .click, .like, .comment, .share, .hide: true
        case .impression, .dwell: false
        }
    }

    /// Matches raw UTF-8 bytes without building a String.
    static func parse(_ raw: UnsafeBufferPointer<UInt8>) -> Action? {
        for a in allCases {
            let name = a.rawValue.utf8
            if raw.count == name.count && raw.elementsEqual(name) { return a }
        }
        return nil
    }

    static let namesList = allCases.map(\.rawValue).joined(separator: ", ")
}
