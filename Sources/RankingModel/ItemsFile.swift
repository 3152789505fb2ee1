#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LinearAlgebra

/// Reads items.jsonl into embedding-row order: every embedded item must have exactly one line;
/// lines for items that are not embedded are validated, then dropped with a warning.
///
/// Each line is parsed in place with `JSONReader` (no per-line String or dictionary), which keeps
/// a million-line catalogue to a fraction of a second.
enum ItemsFile {
    static let name = "items.jsonl"

    struct Result {
        var items: [Item]
        var warnings: [String]
    }

    static func read(_ file: MappedFile, manifest: Manifest, ids: [Int64], index: ItemIndex) throws(ModelError) -> Result {
        file.adviseSequential()
        let placeholder = Item(id: 0, category: -1, creatorId: 0, publishedAt: 0, quality: 0, promoted: false)
        // On huge pages (before the first touch): every exact score reads an item at random,
        // and at 1M items (48 MB) nearly each one was a TLB miss on 4 KiB pages.
        var items = [Item](unsafeUninitializedCapacity: ids.count) { buffer, n in
            if let base = buffer.baseAddress {
                HugePageMemory.adviseHuge(UnsafeMutableRawPointer(base), byteCount: buffer.count * MemoryLayout<Item>.stride)
            }
            buffer.initialize(repeating: placeholder)
            n = buffer.count
        }
        var lineOfRow = [Int32](repeating: 0, count: ids.count)
        var extraLines: [Int64: Int] = [:]
        let categories = manifest.categories.map { Array($0.utf8) }

        let bytes = file.bytes.bindMemory(to: UInt8.self)
        var start = 0
        var lineNumber = 0
        while start < bytes.count {
            lineNumber += 1
            var end = bytes.count
            if let nl = memchr(bytes.baseAddress! + start, 0x0a, bytes.count - start) {
                end = bytes.baseAddress!.distance(to: nl.assumingMemoryBound(to: UInt8.self))
            }
            let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
            start = end + 1
            var r = JSONReader(line)
            if r.isAtEnd { continue }   // blank line
            let item: Item
            do {
                item = try parseLine(&r, categories: categories, manifest: manifest)
            } catch {
                throw ModelError(.badItems, "\(name) line \(lineNumber): \(error.text)")
            }
            if let row = index.row(of: item.id) {
                let r = row
                guard lineOfRow[r] == 0 else {
                    throw ModelError(.badItems, "\(name) line \(lineNumber): duplicate item_id \(item.id) (first on line \(lineOfRow[r]))")
                }
                lineOfRow[r] = Int32(truncatingIfNeeded: lineNumber)
                items[r] = item
            } else if let first = extraLines.updateValue(lineNumber, forKey: item.id) {
                throw ModelError(.badItems, "\(name) line \(lineNumber): duplicate item_id \(item.id) (first on line \(first))")
            }
        }
        if let missing = lineOfRow.firstIndex(of: 0) {
            let count = lineOfRow.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            throw ModelError(.badItems, "\(name): embedded item \(ids[missing]) (row \(missing) of item_ids) has no line"
                + (count > 1 ? " (\(count) embedded items lack a line)" : ""))
        }
        var warnings: [String] = []
        if !extraLines.isEmpty {
            let sample = extraLines.sorted { $0.value < $1.value }.prefix(5).map { "\($0.key) (line \($0.value))" }
            warnings.append("\(name): ignored \(extraLines.count) line(s) for items without an embedding, e.g. \(sample.joined(separator: ", "))")
        }
        return Result(items: items, warnings: warnings)
    }

    private static func parseLine(_ r: inout JSONReader, categories: [[UInt8]], manifest: Manifest) throws(JSONProblem) -> Item {
        var id: Int64?, category: Int?, creator: Int64?, published: Int64?, quality: Double?, promoted = false
        var obj = try r.beginObject()
        while let key = try r.nextKey(&obj) {
            if key.is("item_id") { id = try r.readInt64(field: "item_id") }
            else if key.is("category") {
                let (raw, decoded) = try r.readStringBytes(field: "category")
                if let decoded {
                    category = manifest.categoryIndex(of: decoded)
                } else {
                    category = categories.firstIndex { $0.count == raw.count && $0.elementsEqual(raw) }
                }
                guard category != nil else {
                    let name = decoded ?? String(decoding: raw, as: UTF8.self)
                    throw r.invalid("category", "unknown category \"\(name)\" (not in manifest.json)")
                }
            }
            else if key.is("creator_id") { creator = try r.readInt64(field: "creator_id") }
            else if key.is("published_at") { published = try r.readInt64(field: "published_at") }
            else if key.is("quality") { quality = try r.readDouble(field: "quality") }
            else if key.is("promoted") { promoted = try r.readBool(field: "promoted") }
            else { try r.skipValue() }
        }
        try r.expectEnd()
        guard let id else { throw r.invalid("item_id", "missing") }
        guard let category else { throw r.invalid("category", "missing") }
        guard let creator else { throw r.invalid("creator_id", "missing") }
        guard let published else { throw r.invalid("published_at", "missing") }
        guard let quality else { throw r.invalid("quality", "missing") }
        return Item(id: id, category: category, creatorId: creator, publishedAt: published,
                    quality: quality, promoted: promoted)
    }
}
