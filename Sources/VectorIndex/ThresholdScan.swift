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
}
