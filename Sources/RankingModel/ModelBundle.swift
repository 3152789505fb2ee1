/// A loaded model bundle (contract section 2): manifest, user tower, and the item catalogue with
/// its embedding matrix. The item matrix is read in place from the weights file: memory-mapped,
/// or for a large file a copy on huge pages (`HugePageMemory`); row r of the matrix is
/// `items[r]`. Immutable and safe to share across threads.
public final class ModelBundle: @unchecked Sendable {
    public let directory: String
    public let manifest: Manifest
    public let tower: UserTower
    /// The catalogue in embedding-row order.
    public let items: [Item]
    /// Rows of the promoted items, ascending.
    public let promotedRows: [Int]
    /// `items[r].category` as a compact array (the state update's hot path reads only this).
    public let categoryOfRow: [Int32]
    /// Non-fatal findings of the load (e.g. ignored items.jsonl lines), for the caller to log.
    public let warnings: [String]

    private let index: ItemIndex
    private let weightsFile: MappedFile
    private let embeddings: UnsafeBufferPointer<Float>
    /// Set only when the tensor was misaligned in the file and had to be copied.
    private let ownedEmbeddings: UnsafeMutableBufferPointer<Float>?
    /// `embeddingPointer`'s inputs as stored constants, so other modules inline it (a ranking
    /// touches and scores ~250 random rows; a call per row kept the touch loop from running
    /// ahead of its cache misses).
    @usableFromInline let embeddingBase: UnsafePointer<Float>
    @usableFromInline let rowCount: Int
    @usableFromInline let rowStride: Int

    init(directory: String, manifest: Manifest, tower: UserTower, items: [Item], warnings: [String],
         index: ItemIndex, weightsFile: MappedFile, embeddings: UnsafeBufferPointer<Float>,
         ownedEmbeddings: UnsafeMutableBufferPointer<Float>?) {
        self.directory = directory
        self.manifest = manifest
        self.tower = tower
        self.items = items
        self.promotedRows = items.indices.filter { items[$0].promoted }
        self.categoryOfRow = items.map { Int32($0.category) }
        self.warnings = warnings
        self.index = index
        self.weightsFile = weightsFile
        self.embeddings = embeddings
        self.ownedEmbeddings = ownedEmbeddings
        self.embeddingBase = embeddings.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!
        self.rowCount = items.count
        self.rowStride = manifest.embeddingDimension
    }

    deinit { ownedEmbeddings?.deallocate() }

    /// N: the number of embedded items.
    public var itemCount: Int { items.count }
    /// D.
    public var embeddingDimension: Int { manifest.embeddingDimension }

    /// The embedding row of an item id, or nil when the item is not in this bundle.
    @inline(__always)
    public func row(of itemId: Int64) -> Int? { index.row(of: itemId) }

    public func item(id: Int64) -> Item? { row(of: id).map { items[$0] } }

    /// The whole N×D row-major item matrix, valid inside `body`.
    public func withItemEmbeddings<R, E: Error>(_ body: (UnsafeBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        try withExtendedLifetime(self) { () throws(E) -> R in try body(embeddings) }
    }

    /// Row r of the item matrix, valid inside `body`.
    public func withEmbedding<R, E: Error>(row: Int, _ body: (UnsafeBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        precondition(row >= 0 && row < itemCount, "ModelBundle: row \(row) out of 0..<\(itemCount)")
        let d = embeddingDimension
        return try withExtendedLifetime(self) { () throws(E) -> R in
            try body(UnsafeBufferPointer(start: embeddings.baseAddress! + row * d, count: d))
        }
    }

    /// Hot-path access: a pointer to row r's D floats. Valid only while this bundle is alive —
    /// the caller must hold a strong reference to the bundle for as long as it uses the pointer.
    @inlinable @inline(__always)
    public func embeddingPointer(row: Int) -> UnsafePointer<Float> {
        precondition(row >= 0 && row < rowCount, "ModelBundle: row \(row) out of 0..<\(rowCount)")
        return embeddingBase + row * rowStride
    }

    /// Row r as a new array (tests, tools; not for hot paths).
    public func embedding(row: Int) -> [Float] { withEmbedding(row: row) { Array($0) } }
}
