#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Finding the few values above a threshold in a long run of floats (a top-k selection over
/// dot products: once the selection is full, almost nothing enters). Eight floats are compared
/// per step; the ranking's generic `SIMD8 .>` compiled to one lane at a time through memory.
public enum ThresholdScan {
    /// The first i in `start..<end` with values[i] > threshold, or `end`.
    public static func firstAbove(_ values: UnsafePointer<Float>, from start: Int, to end: Int,
                                  threshold: Float) -> Int {
        var i = start
        #if arch(x86_64)
        let t = _mm_set1_ps(threshold)
        while i + 8 <= end {
            let lo = _mm_loadu_ps(values + i), hi = _mm_loadu_ps(values + i + 4)
            let mask = _mm_movemask_ps(_mm_cmpgt_ps(lo, t)) | (_mm_movemask_ps(_mm_cmpgt_ps(hi, t)) << 4)
            if mask != 0 { return i + Int(mask.trailingZeroBitCount) }
            i += 8
        }
        #endif
        while i < end {
            if values[i] > threshold { return i }
            i += 1
        }
        return end
    }

    /// Writes to `out` the positions i in `0..<count` with values[i] > threshold, ascending, and
    /// returns how many; nil as soon as there are more than `limit` (then `out` holds the first
    /// `limit`). One pass, eight floats a step, where finding each with `firstAbove` set up a
    /// new scan per position.
    public static func positions(_ values: UnsafePointer<Float>, count: Int, above threshold: Float,
                                 into out: UnsafeMutablePointer<Int32>, limit: Int) -> Int? {
        var m = 0
        var i = 0
        #if arch(x86_64)
        let t = _mm_set1_ps(threshold)
        while i + 8 <= count {
            let lo = _mm_loadu_ps(values + i), hi = _mm_loadu_ps(values + i + 4)
            var mask = _mm_movemask_ps(_mm_cmpgt_ps(lo, t)) | (_mm_movemask_ps(_mm_cmpgt_ps(hi, t)) << 4)
            while mask != 0 {
                guard m < limit else { return nil }
                out[m] = Int32(truncatingIfNeeded: i + Int(mask.trailingZeroBitCount))
                m += 1
                mask &= mask - 1
            }
            i += 8
        }
        #endif
        while i < count {
            if values[i] > threshold {
                guard m < limit else { return nil }
                out[m] = Int32(truncatingIfNeeded: i)
                m += 1
            }
            i += 1
        }
        return m
    }

    /// For `count` (<= 64) values, each one's place among them by (value descending, lower
    /// position first): ranks[i] = #{j < i: values[j] >= values[i]} + #{j > i: values[j] >
    /// values[i]}, a permutation of 0..<count. Branch-free (two compares of eight values per
    /// step and two population counts per value), for selecting the best few of a handful
    /// without sorted insertions. Values must not be NaN; -0 and +0 are equal. With `padded`,
    /// `values` is readable up to `count` rounded up to a multiple of eight and -infinity past
    /// `count` (no scalar tail then).
    public static func ranks(_ values: UnsafePointer<Float>, count: Int, into ranks: UnsafeMutablePointer<Int32>,
                             padded: Bool = false) {
        precondition(count >= 0 && count <= 64, "ThresholdScan.ranks: \(count) values, at most 64")
        let full = padded ? (count + 7) & ~7 : count & ~7
        for i in 0..<count {
            // Adding +0 turns -0 into +0: then x - v is zero (and +0) exactly when x == v.
            let v = values[i] + 0
            var gt: UInt64 = 0, ge: UInt64 = 0     // bit j: values[j] > v, values[j] >= v
            var c = 0
            #if arch(x86_64)
            let t = _mm256_set1_ps(v), zero = _mm256_setzero_ps()
            while c < full {
                let x = _mm256_add_ps(_mm256_loadu_ps(values + c), zero)
                // v - x < 0 exactly when x > v; x - v >= 0 (sign clear) exactly when x >= v.
                gt |= UInt64(UInt8(truncatingIfNeeded: _mm256_movemask_ps(_mm256_sub_ps(t, x)))) << UInt64(c)
                ge |= UInt64(~UInt8(truncatingIfNeeded: _mm256_movemask_ps(_mm256_sub_ps(x, t)))) << UInt64(c)
                c += 8
            }
            #endif
            while c < count {
                let x = values[c]
                if x > v { gt |= UInt64(1) << UInt64(c) }
                if x >= v { ge |= UInt64(1) << UInt64(c) }
                c += 1
            }
            let before = (UInt64(1) << UInt64(i)) &- 1
            // (Padding lanes are -infinity: below every value, so never set in gt or ge.)
            let after = ~before & ~(UInt64(1) << UInt64(i))
            ranks[i] = Int32((ge & before).nonzeroBitCount + (gt & after).nonzeroBitCount)
        }
    }

    /// A value that at least `k` (1...32) of `values[0..<count]` reach, near the k-th largest:
    /// the k-th largest of the 32 lanes' maxima (lane r: the positions i with i % 32 == r; each
    /// maximum is another position's value), or -infinity when fewer than k values.
    /// A top-k selection then looks only at the values at or above it; over ~150 values the
    /// eight lanes of the dot-product kernel left ~2.5x k of them, 32 lanes leave ~k + 1.
    public static func laneBar(_ values: UnsafePointer<Float>, count: Int, k: Int) -> Float {
        precondition(k >= 1 && k <= 32, "ThresholdScan.laneBar: k \(k), 1...32")
        var i = 0
        #if arch(x86_64)
        var m0 = _mm256_set1_ps(-.infinity), m1 = m0, m2 = m0, m3 = m0
        while i + 32 <= count {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(values + i))
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(values + i + 8))
            m2 = _mm256_max_ps(m2, _mm256_loadu_ps(values + i + 16))
            m3 = _mm256_max_ps(m3, _mm256_loadu_ps(values + i + 24))
            i += 32
        }
        if i < count {
            // The tail through a buffer of 32 (-infinity past the end).
            var tail = (SIMD16<Float>(repeating: -.infinity), SIMD16<Float>(repeating: -.infinity))
            withUnsafeMutableBytes(of: &tail) { raw in
                let t = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                for j in i..<count { t[j - i] = values[j] }
                m0 = _mm256_max_ps(m0, _mm256_loadu_ps(t))
                m1 = _mm256_max_ps(m1, _mm256_loadu_ps(t + 8))
                m2 = _mm256_max_ps(m2, _mm256_loadu_ps(t + 16))
                m3 = _mm256_max_ps(m3, _mm256_loadu_ps(t + 24))
            }
        }
        // The largest lane maximum, as often as lanes hold it, until k are counted.
        let none = _mm256_set1_ps(-.infinity)
        var left = k
        while true {
            let t = broadcastMax(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)))
            let top = unsafeBitCast(t, to: SIMD8<Float>.self)[0]
            if top == -.infinity { return top }
            let ti = _mm256_castps_si256(t)
            let e0 = _mm256_cmpeq_epi32(_mm256_castps_si256(m0), ti), e1 = _mm256_cmpeq_epi32(_mm256_castps_si256(m1), ti)
            let e2 = _mm256_cmpeq_epi32(_mm256_castps_si256(m2), ti), e3 = _mm256_cmpeq_epi32(_mm256_castps_si256(m3), ti)
            let held = (_mm256_movemask_ps(_mm256_castsi256_ps(e0)) | _mm256_movemask_ps(_mm256_castsi256_ps(e1)) << 8
                        | _mm256_movemask_ps(_mm256_castsi256_ps(e2)) << 16 | _mm256_movemask_ps(_mm256_castsi256_ps(e3)) << 24).nonzeroBitCount
            if held >= left { return top }
            left -= held
            m0 = _mm256_blendv_ps(m0, none, _mm256_castsi256_ps(e0))
            m1 = _mm256_blendv_ps(m1, none, _mm256_castsi256_ps(e1))
            m2 = _mm256_blendv_ps(m2, none, _mm256_castsi256_ps(e2))
            m3 = _mm256_blendv_ps(m3, none, _mm256_castsi256_ps(e3))
        }
        #else
        var l = [Float](repeating: -.infinity, count: 32)
        while i < count { l[i & 31] = max(l[i & 31], values[i]); i += 1 }
        return l.sorted(by: >)[k - 1]
        #endif
    }

    /// For `count` (<= 64) entries keyed by (value descending, tie ascending), each one's place
    /// among them: ranks[i] = #{j: values[j] > values[i], or equal with ties[j] < ties[i]}, a
    /// permutation of 0..<count when no two entries share both. `values` and `ties` must be
    /// readable up to `count` rounded up to a multiple of four, the values there -infinity;
    /// values not NaN (-0 and +0 are equal). Four compares at a time, no branches: sorting a
    /// ranking's ~12-candidate pools by insertion mispredicted about once per move.
    public static func ranks(_ values: UnsafePointer<Double>, ties: UnsafePointer<Int64>, count: Int,
                             into ranks: UnsafeMutablePointer<Int32>) {
        precondition(count >= 0 && count <= 64, "ThresholdScan.ranks: \(count) entries, at most 64")
        let full = (count + 3) & ~3
        for i in 0..<count {
            let v = values[i] + 0, t = ties[i]
            var before = 0
            #if arch(x86_64)
            let vv = _mm256_set1_pd(v), tv = _mm256_set1_epi64x(t), zero = _mm256_setzero_pd()
            var c = 0
            while c < full {
                let x = _mm256_add_pd(_mm256_loadu_pd(values + c), zero)
                let y = UnsafeRawPointer(ties + c).loadUnaligned(as: __m256i.self)
                // v - x < 0 exactly when x > v (and zero, +0, exactly when equal).
                let gt = _mm256_movemask_pd(_mm256_sub_pd(vv, x))
                let eq = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_castpd_si256(x), _mm256_castpd_si256(vv))))
                let lt = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(tv, y)))
                before += Int((gt | (eq & lt)).nonzeroBitCount)
                c += 4
            }
            #else
            for j in 0..<full where values[j] > v || (values[j] == v && ties[j] < t) { before += 1 }
            #endif
            ranks[i] = Int32(before)
        }
    }
}
