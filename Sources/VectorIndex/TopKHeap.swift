/// Keeps the `capacity` highest-scoring (score, id) pairs seen: a binary min-heap whose root is
/// the worst kept entry, so `threshold` is the score a newcomer must beat. Up to
/// `sortedLimit` entries it is a sorted array instead (ascending, the worst first): a newcomer
/// slides in from the bottom, a few predictable moves where the heap's sift-down takes a
/// mispredicted branch per level (the per-category searches keep 16). Storage is allocated
/// once and reused across queries (`reset`).
struct TopKHeap {
    static let sortedLimit = 32
    private(set) var scores: UnsafeMutablePointer<Float>
    private(set) var ids: UnsafeMutablePointer<Int64>
    private(set) var capacity: Int
    private(set) var count = 0
    private var allocated: Int
    /// Sorted-array mode (capacity <= sortedLimit).
    private var sorted: Bool

    init(capacity: Int) {
        allocated = max(1, capacity)
        scores = .allocate(capacity: allocated)
        ids = .allocate(capacity: allocated)
        self.capacity = capacity
        sorted = capacity <= Self.sortedLimit
    }

    func deallocate() {
        scores.deallocate()
        ids.deallocate()
    }

    /// Empties the heap and sets a new capacity (reallocating only when it grows).
    mutating func reset(capacity newCapacity: Int) {
        if newCapacity > allocated {
            scores.deallocate()
            ids.deallocate()
            allocated = newCapacity
            scores = .allocate(capacity: allocated)
            ids = .allocate(capacity: allocated)
        }
        capacity = newCapacity
        sorted = newCapacity <= Self.sortedLimit
        count = 0
    }

    /// The score to beat: -inf until full, then the worst kept score.
    @inline(__always)
    var threshold: Float { count < capacity ? -.infinity : scores[0] }

    @inline(__always)
    mutating func push(_ score: Float, _ id: Int64) {
        if sorted {
            pushSorted(score, id)
            return
        }
        if count < capacity {
            var i = count
            count += 1
            while i > 0 {
                let parent = (i - 1) >> 1
                if scores[parent] <= score { break }
                scores[i] = scores[parent]
                ids[i] = ids[parent]
                i = parent
            }
            scores[i] = score
            ids[i] = id
        } else if score > scores[0] {
            siftDownFromRoot(score, id)
        }
    }

    /// Sorted mode: entries ascending by score, scores[0] the worst.
    @inline(__always)
    private mutating func pushSorted(_ score: Float, _ id: Int64) {
        // Local copies of the pointers: stores through them cannot then alias the struct, so
        // the loop does not reload them after every move.
        let sc = scores, ix = ids
        var j: Int
        if count < capacity {
            j = count
            count += 1
            while j > 0 && sc[j - 1] > score {
                sc[j] = sc[j - 1]
                ix[j] = ix[j - 1]
                j -= 1
            }
        } else {
            guard score > sc[0] else { return }
            j = 0
            let n = count
            while j + 1 < n && sc[j + 1] < score {
                sc[j] = sc[j + 1]
                ix[j] = ix[j + 1]
                j += 1
            }
        }
        sc[j] = score
        ix[j] = id
    }

    @inline(__always)
    private mutating func siftDownFromRoot(_ score: Float, _ id: Int64) {
        var i = 0
        let n = count
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n && scores[child + 1] < scores[child] { child += 1 }
            if scores[child] >= score { break }
            scores[i] = scores[child]
            ids[i] = ids[child]
            i = child
        }
        scores[i] = score
        ids[i] = id
    }

    /// Copies the kept entries into `out` in result order (best first); returns the count.
    func sortedResults(into out: UnsafeMutablePointer<Neighbor>) -> Int {
        // Reversed: in sorted mode that is already best first (the sort then only orders ties).
        for i in 0..<count { out[i] = Neighbor(id: ids[count - 1 - i], score: scores[count - 1 - i]) }
        insertionSort(out, count: count)
        return count
    }
}

/// In-place sort of a short result buffer (tens of entries) by `Neighbor.precedes`.
@inline(__always)
func insertionSort(_ p: UnsafeMutablePointer<Neighbor>, count: Int) {
    guard count > 1 else { return }
    for i in 1..<count {
        let x = p[i]
        var j = i
        while j > 0 && Neighbor.precedes(x, p[j - 1]) {
            p[j] = p[j - 1]
            j -= 1
        }
        p[j] = x
    }
}
