/// `manifest.json` of a model bundle (contract section 2), validated.
public struct Manifest: Sendable, Equatable {
    public static let formatV1 = "feedrank.bundle.v1"

    public struct ActionWeight: Sendable, Equatable {
        public var action: Action
        public var weight: Double
        public init(_ action: Action, _ weight: Double) {
            self.action = action
            self.weight = weight
        }
    }

    public let format: String
    public let modelVersion: String
    /// D: the embedding dimension of items and users.
    public let embeddingDimension: Int
    /// Category names; index = category id.
    public let categories: [String]
    public let devices: [String]
    /// The order of `n` in the user state. Every contract action appears exactly once.
    public let actions: [ActionWeight]
    public let halfLifeHours: Double
    /// Hidden layer sizes of the user tower (F -> hidden... -> D).
    public let hiddenSizes: [Int]
    public let activation: String
    public let temperature: Double
    public let scoreBias: Double

    /// index in `actions` (= slot in `n`) by `Action.ordinal`.
    private let slotByOrdinal: [Int]
    private let weightByOrdinal: [Double]
    private let categoryIndex: [String: Int]

    public init(format: String = Manifest.formatV1, modelVersion: String, embeddingDimension: Int,
                categories: [String], devices: [String], actions: [ActionWeight], halfLifeHours: Double,
                hiddenSizes: [Int], activation: String = "relu", temperature: Double,
                scoreBias: Double = 0) throws(ModelError) {
        func fail(_ m: String) -> ModelError { ModelError(.badManifest, "manifest.json: \(m)") }
        guard format == Manifest.formatV1 else {
            throw fail("format is \"\(format)\", expected \"\(Manifest.formatV1)\"")
        }
        guard !modelVersion.isEmpty else { throw fail("model_version is empty") }
        guard embeddingDimension > 0 else { throw fail("embedding_dim must be positive, got \(embeddingDimension)") }
        guard !categories.isEmpty else { throw fail("categories is empty") }
        var categoryIndex: [String: Int] = [:]
        for (i, c) in categories.enumerated() {
            guard categoryIndex.updateValue(i, forKey: c) == nil else { throw fail("category \"\(c)\" is listed twice") }
        }
        guard Set(devices).count == devices.count else { throw fail("devices has duplicates") }
        var slot = [Int](repeating: -1, count: Action.allCases.count)
        var weight = [Double](repeating: 0, count: Action.allCases.count)
        for (i, a) in actions.enumerated() {
            guard slot[a.action.ordinal] < 0 else { throw fail("action \"\(a.action.rawValue)\" is listed twice") }
            guard a.weight.isFinite else { throw fail("action \"\(a.action.rawValue)\" has a non-finite weight") }
            slot[a.action.ordinal] = i
            weight[a.action.ordinal] = a.weight
        }
        if let missing = Action.allCases.first(where: { slot[$0.ordinal] < 0 }) {
            throw fail("actions lacks \"\(missing.rawValue)\" (every user-activity action needs a weight)")
        }
        guard halfLifeHours.isFinite && halfLifeHours > 0 else { throw fail("half_life_hours must be positive, got \(halfLifeHours)") }
        guard hiddenSizes.allSatisfy({ $0 > 0 }) else { throw fail("user_tower.hidden sizes must be positive, got \(hiddenSizes)") }
        guard activation == "relu" else { throw fail("user_tower.activation \"\(activation)\" is not supported (only \"relu\")") }
        guard temperature.isFinite && temperature > 0 else { throw fail("temperature must be positive, got \(temperature)") }
        guard scoreBias.isFinite else { throw fail("score_bias must be finite") }

        self.format = format
        self.modelVersion = modelVersion
        self.embeddingDimension = embeddingDimension
        self.categories = categories
        self.devices = devices
        self.actions = actions
        self.halfLifeHours = halfLifeHours
        self.hiddenSizes = hiddenSizes
        self.activation = activation
        self.temperature = temperature
        self.scoreBias = scoreBias
        self.slotByOrdinal = slot
        self.weightByOrdinal = weight
        self.categoryIndex = categoryIndex
    }

    public var categoryCount: Int { categories.count }
    public var actionCount: Int { actions.count }
    /// K = 4 + len(devices) + 1.
    public var contextCount: Int { 4 + devices.count + 1 }
    /// F = D + C + A + K: the user tower's input width.
    public var featureCount: Int { embeddingDimension + categoryCount + actionCount + contextCount }
    public var halfLifeMilliseconds: Double { halfLifeHours * 3_600_000 }

    public func categoryIndex(of name: String) -> Int? { categoryIndex[name] }

    /// The slot of `action` in `n`.
    @inline(__always) public func slot(of action: Action) -> Int { slotByOrdinal[action.ordinal] }
    @inline(__always) public func weight(of action: Action) -> Double { weightByOrdinal[action.ordinal] }

    /// Layer widths from input to output: [F, hidden..., D].
    public var layerWidths: [Int] { [featureCount] + hiddenSizes + [embeddingDimension] }
}
