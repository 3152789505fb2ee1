/// Item id -> embedding row. Bundles usually number their items contiguously (id = base + row),
/// which is answered with arithmetic; otherwise an open-addressing table with a cheap integer
/// hash (one cache line per probe, unlike `Dictionary`'s SipHash), sized to a load of <= 1/2.
struct ItemIndex: Sendable {
    private enum Storage: Sendable {
        case contiguous(base: Int64, count: Int)
        /// slots of (id, row + 1); row + 1 == 0 marks an empty slot.
        case table(slots: [Slot], mask: Int)
    }

    struct Slot: Sendable {
        var id: Int64
        var rowPlusOne: Int32
    }

    private let storage: Storage

    /// Builds the index; a repeated id is reported as (id, first row, second row).
    init(ids: [Int64]) throws(DuplicateId) {
        if let first = ids.first, ids.count < Int(Int32.max),
           ids.indices.allSatisfy({ ids[$0] &- first == Int64($0) }), first <= Int64.max - Int64(ids.count) {
            storage = .contiguous(base: first, count: ids.count)
            return
        }
        precondition(ids.count < Int(Int32.max), "ItemIndex: too many items")
        var capacity = 16
        while capacity < ids.count * 2 { capacity <<= 1 }
        let mask = capacity - 1
        var slots = [Slot](repeating: Slot(id: 0, rowPlusOne: 0), count: capacity)
        for (row, id) in ids.enumerated() {
            var i = Self.hash(id) & mask
            while slots[i].rowPlusOne != 0 {
                if slots[i].id == id { throw DuplicateId(id: id, firstRow: Int(slots[i].rowPlusOne) - 1, secondRow: row) }
                i = (i + 1) & mask
            }
            slots[i] = Slot(id: id, rowPlusOne: Int32(row + 1))
        }
        storage = .table(slots: slots, mask: mask)
    }

    struct DuplicateId: Error {
        let id: Int64
        let firstRow: Int
        let secondRow: Int
    }

    @inline(__always)
    func row(of id: Int64) -> Int? {
        switch storage {
        case .contiguous(let base, let count):
            let (offset, overflow) = id.subtractingReportingOverflow(base)
            return !overflow && offset >= 0 && offset < Int64(count) ? Int(offset) : nil
        case .table(let slots, let mask):
            return slots.withUnsafeBufferPointer { s in
                var i = Self.hash(id) & mask
                while true {
                    let slot = s[i]
                    if slot.rowPlusOne == 0 { return nil }
                    if slot.id == id { return Int(slot.rowPlusOne) - 1 }
                    i = (i + 1) & mask
                }
            }
        }
    }

    /// The murmur3 64-bit finaliser: cheap, and mixes sequential ids well.
    @inline(__always)
    private static func hash(_ id: Int64) -> Int {
        var h = UInt64(bitPattern: id)
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return Int(truncatingIfNeeded: h)
    }
}
