#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ModelBundle {
    public static let manifestFile = "manifest.json"
    public static let weightsFile = "weights.safetensors"
    public static let itemsFile = "items.jsonl"
    /// How far an item embedding's L2 norm may stray from 1.
    public static let unitNormTolerance = 1e-3

    /// Loads and validates a bundle directory. Any inconsistency is a `ModelError` whose message
    /// names the file and the tensor, line or field at fault.
    public static func load(directory: String) throws(ModelError) -> ModelBundle {
        #if _endian(big)
        throw ModelError(.badTensor, "\(weightsFile): big-endian hosts are not supported")
        #else
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        var info = stat()
        guard stat(dir, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ModelError(.missingFile, "bundle directory \(dir) does not exist or is not a directory")
        }

        let manifestBytes = try MappedFile(path: "\(dir)/\(manifestFile)", name: manifestFile)
        let manifest = try Manifest.parse(Array(manifestBytes.bytes))

        let weights = try MappedFile(path: "\(dir)/\(weightsFile)", name: weightsFile, resident: true)
        let st = try SafeTensors(file: weights)
        let tower = try loadTower(st, manifest: manifest)

        let d = manifest.embeddingDimension
        let embT = try st.tensor("item_embeddings", dtype: "F32", shape: [nil, d])
        let n = embT.shape[0]
        let idsT = try st.tensor("item_ids", dtype: "I64", shape: [n])
        var embeddings: UnsafeBufferPointer<Float>
        var owned: UnsafeMutableBufferPointer<Float>?
        if let mapped = st.mappedFloats(embT) {
            embeddings = mapped
        } else {
            let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: embT.elementCount)
            _ = copy.initialize(from: st.copyFloats(embT))
            owned = copy
            embeddings = UnsafeBufferPointer(copy)
        }
        let ids = st.copyInt64s(idsT)
        do {
            try checkUnitRows(embeddings, ids: ids, width: d)
        } catch {
            owned?.deallocate()
            throw error
        }
        let index: ItemIndex
        do {
            index = try ItemIndex(ids: ids)
        } catch {
            owned?.deallocate()
            throw ModelError(.badTensor, "\(weightsFile): tensor 'item_ids' holds \(error.id) twice (rows \(error.firstRow) and \(error.secondRow))")
        }

        let itemsResult: ItemsFile.Result
        do {
            let itemsMap = try MappedFile(path: "\(dir)/\(itemsFile)", name: itemsFile)
            itemsResult = try ItemsFile.read(itemsMap, manifest: manifest, ids: ids, index: index)
        } catch {
            owned?.deallocate()
            throw error
        }
        return ModelBundle(directory: dir, manifest: manifest, tower: tower, items: itemsResult.items,
                           warnings: itemsResult.warnings, index: index, weightsFile: weights,
                           embeddings: embeddings, ownedEmbeddings: owned)
        #endif
    }

    /// `user_tower.{k}.weight` [out, in] and `.bias` [out] for k = 0..<L with no gaps, chained
    /// F -> hidden... -> D as the manifest declares, all finite.
    private static func loadTower(_ st: SafeTensors, manifest: Manifest) throws(ModelError) -> UserTower {
        var indices = Set<Int>()
        for name in st.tensors.keys where name.hasPrefix("user_tower.") {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let k = Int(parts[1]), k >= 0, String(k) == parts[1],
                  parts[2] == "weight" || parts[2] == "bias" else {
                throw ModelError(.badTensor, "\(weightsFile): unexpected tensor '\(name)' (expected user_tower.{k}.weight or .bias)")
            }
            indices.insert(k)
        }
        let sorted = indices.sorted()
        if let gap = (0..<(sorted.count)).first(where: { sorted[$0] != $0 }) {
            throw ModelError(.badTensor, "\(weightsFile): gap in user_tower layer indices: found \(sorted), user_tower.\(gap) is missing")
        }
        let widths = manifest.layerWidths
        guard sorted.count == widths.count - 1 else {
            throw ModelError(.badTensor, "\(weightsFile): \(sorted.count) user_tower layers, but manifest.json's user_tower.hidden \(manifest.hiddenSizes) means \(widths.count - 1) (widths \(widths))")
        }
        var layers: [UserTower.Layer] = []
        for k in 0..<sorted.count {
            let (inputs, outputs) = (widths[k], widths[k + 1])
            let wT = try st.tensor("user_tower.\(k).weight", dtype: "F32", shape: [outputs, inputs])
            let bT = try st.tensor("user_tower.\(k).bias", dtype: "F32", shape: [outputs])
            let w = st.copyFloats(wT), b = st.copyFloats(bT)
            if let i = w.firstIndex(where: { !$0.isFinite }) {
                throw ModelError(.badValues, "\(weightsFile): tensor 'user_tower.\(k).weight' holds \(w[i]) at [\(i / inputs), \(i % inputs)]")
            }
            if let i = b.firstIndex(where: { !$0.isFinite }) {
                throw ModelError(.badValues, "\(weightsFile): tensor 'user_tower.\(k).bias' holds \(b[i]) at [\(i)]")
            }
            layers.append(UserTower.Layer(inputs: inputs, outputs: outputs, weight: w, bias: b))
        }
        return UserTower(layers: layers)
    }

    /// Every row finite and of unit L2 norm. The fast pass sums squares in SIMD (a NaN or inf
    /// anywhere makes the sum non-finite); a row that fails is re-scanned for the exact message.
    private static func checkUnitRows(_ e: UnsafeBufferPointer<Float>, ids: [Int64], width: Int) throws(ModelError) {
        guard let base = e.baseAddress, width > 0 else { return }
        let raw = UnsafeRawPointer(base)
        for r in ids.indices {
            let row = r * width
            var acc = SIMD8<Float>()
            var j = 0
            while j + 8 <= width {
                let v = raw.loadUnaligned(fromByteOffset: (row + j) * 4, as: SIMD8<Float>.self)
                acc += v * v
                j += 8
            }
            var ss = Double(acc.sum())
            while j < width { ss += Double(e[row + j]) * Double(e[row + j]); j += 1 }
            if ss.isFinite && abs(ss.squareRoot() - 1) <= unitNormTolerance / 2 { continue }
            try checkRowExactly(e, row: r, id: ids[r], width: width)
        }
    }

    private static func checkRowExactly(_ e: UnsafeBufferPointer<Float>, row r: Int, id: Int64, width: Int) throws(ModelError) {
        var ss = 0.0
        for j in 0..<width {
            let v = e[r * width + j]
            guard v.isFinite else {
                throw ModelError(.badValues, "\(weightsFile): tensor 'item_embeddings' holds \(v) at [\(r), \(j)] (item \(id))")
            }
            ss += Double(v) * Double(v)
        }
        let norm = ss.squareRoot()
        guard abs(norm - 1) <= unitNormTolerance else {
            throw ModelError(.badValues, "\(weightsFile): tensor 'item_embeddings' row \(r) (item \(id)) has L2 norm \(norm), expected 1 (±\(unitNormTolerance)): embeddings must be L2-normalised")
        }
    }
}
