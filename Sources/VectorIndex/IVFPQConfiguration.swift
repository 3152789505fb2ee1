/// What an IVF-PQ index is made of; fixed at creation, stored in the index file.
public struct IVFPQConfiguration: Sendable, Equatable {
    /// Vector dimension D.
    public var dimension: Int
    /// Number of inverted lists (coarse centroids).
    public var nlist: Int
    /// PQ sub-quantizers M (D % M == 0). With 4-bit codes M must be even and <= 256.
    public var subquantizers: Int
    /// Bits per PQ code: 8 (classic IVF-PQ, float tables) or 4 (fast-scan, SIMD byte tables).
    public var bitsPerCode: Int
    /// Lloyd iterations of the coarse k-means.
    public var coarseIterations: Int
    /// Lloyd iterations of each PQ codebook's k-means.
    public var pqIterations: Int
    /// The coarse k-means trains on at most nlist × this many points (a seeded sample).
    public var maxTrainingPointsPerList: Int
    /// Seed of every random choice (sampling, initialisation, empty-cluster splits).
    public var seed: UInt64

    public init(dimension: Int, nlist: Int, subquantizers: Int, bitsPerCode: Int = 8,
                coarseIterations: Int = 20, pqIterations: Int = 25,
                maxTrainingPointsPerList: Int = 64, seed: UInt64 = 1234) {
        self.dimension = dimension
        self.nlist = nlist
        self.subquantizers = subquantizers
        self.bitsPerCode = bitsPerCode
        self.coarseIterations = coarseIterations
        self.pqIterations = pqIterations
        self.maxTrainingPointsPerList = maxTrainingPointsPerList
        self.seed = seed
    }

    var layout: CodeLayout {
        bitsPerCode == 4 ? .fastScan4(subquantizers: subquantizers) : .bytes(subquantizers: subquantizers)
    }

    func validate() throws(VectorIndexError) {
        guard dimension >= 1 else { throw .invalid("dimension must be >= 1, got \(dimension)") }
        guard nlist >= 1 else { throw .invalid("nlist must be >= 1, got \(nlist)") }
        guard subquantizers >= 1, dimension % subquantizers == 0 else {
            throw .invalid("dimension \(dimension) is not divisible by M = \(subquantizers)")
        }
        guard bitsPerCode == 4 || bitsPerCode == 8 else {
            throw .invalid("bits per code must be 4 or 8, got \(bitsPerCode)")
        }
        if bitsPerCode == 4 {
            guard subquantizers % 2 == 0, subquantizers <= 256 else {
                throw .invalid("4-bit fast-scan needs an even M <= 256, got \(subquantizers)")
            }
        }
        guard coarseIterations >= 1, pqIterations >= 1 else { throw .invalid("k-means iterations must be >= 1") }
        guard maxTrainingPointsPerList >= 1 else { throw .invalid("maxTrainingPointsPerList must be >= 1") }
    }
}

/// Per-call search settings.
public struct SearchParameters: Sendable, Equatable {
    /// Inverted lists scanned per query (per label for label-restricted searches).
    public var nprobe: Int
    /// With a `VectorSource`, the index collects k × refineFactor candidates by approximate
    /// score and re-scores them exactly (FAISS's IndexRefineFlat k_factor). 1 = no refinement.
    public var refineFactor: Int
    /// Label-restricted searches: of the `nprobe` lists selected for a label, the ones after
    /// the best are scanned only while their probe score (<q, c> - |c|²/2) is within this much
    /// of the best list's, or while fewer than k of the label's entries were in the lists
    /// before them. Infinity (the default): all `nprobe`.
    public var probeMargin: Float

    /// For an index ordered along its residuals' principal axis (`IVFPQIndex.orderAlongPrincipalAxis`),
    /// 4-bit, label-restricted searches without a predicate: each list is scanned from the end
    /// that faces the query, and stops at the first block whose best possible score — the
    /// list's coarse score + the query's axis coordinate × the block's extreme entry's + this
    /// many standard deviations of the rest of the residual's score (from the query and the
    /// residuals' moments) — cannot enter the heap. Infinity (the default): whole lists.
    public var axisSlack: Float

    public init(nprobe: Int = 8, refineFactor: Int = 1, probeMargin: Float = .infinity, axisSlack: Float = .infinity) {
        self.nprobe = nprobe
        self.refineFactor = refineFactor
        self.probeMargin = probeMargin
        self.axisSlack = axisSlack
    }
}

/// Exact vectors by id, for refinement: returns a pointer to the D floats of `id`, or nil if
/// unknown (the candidate is then dropped). The pointer must stay valid during the search call.
public struct VectorSource: @unchecked Sendable {
    public let vector: (Int64) -> UnsafePointer<Float>?

    public init(_ vector: @escaping (Int64) -> UnsafePointer<Float>?) { self.vector = vector }

    /// Row-major n × dimension floats where id i is row i (bundle row numbers, fvecs rows).
    public init(rows: UnsafeBufferPointer<Float>, dimension: Int) {
        let n = dimension > 0 ? rows.count / dimension : 0
        let base = rows.baseAddress
        self.vector = { id in
            guard id >= 0, id < n, let base else { return nil }
            return base + Int(id) * dimension
        }
    }
}

/// Restricts which entries a search may return.
public enum SearchFilter: @unchecked Sendable {
    /// Every entry.
    case none
    /// Only entries with this label; scans only that label's runs in the lists that hold it.
    case label(UInt16)
    /// Only ids for which the closure returns true (evaluated for candidates that would enter
    /// the top-k; all probed lists are scanned).
    case predicate((Int64) -> Bool)
}

/// Progress of a long index operation (training, adding), for progress bars and logs.
public struct IndexProgress: Sendable {
    public var phase: String
    public var done: Int
    public var total: Int
}
