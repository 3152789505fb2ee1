#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// Lane-wise maxima for the scans' bars (the fast-scan's 16-bit sums, the int8 rows' dots): one
// vector instruction each. The standard library's `pointwiseMax` compiled to an out-of-line
// call working one lane at a time (for floats, 8 % of a ranking at 1M items).

@inline(__always)
func lanewiseMax(_ a: SIMD16<UInt16>, _ b: SIMD16<UInt16>) -> SIMD16<UInt16> {
    #if arch(x86_64)
    return unsafeBitCast(_mm256_max_epu16(unsafeBitCast(a, to: __m256i.self), unsafeBitCast(b, to: __m256i.self)), to: SIMD16<UInt16>.self)
    #else
    return pointwiseMax(a, b)
    #endif
}

@inline(__always)
func lanewiseMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(x86_64)
    return unsafeBitCast(_mm256_max_ps(unsafeBitCast(a, to: __m256.self), unsafeBitCast(b, to: __m256.self)), to: SIMD8<Float>.self)
    #else
    return pointwiseMax(a, b)
    #endif
}

/// The `k`-th largest of the eight lanes (1 <= k <= 8), counting equal lanes as many times as
/// they occur. The standard library's `max()` and `replace(with:where:)` were generic calls.
@inline(__always)
func kthLargest(_ v: SIMD8<Float>, _ k: Int) -> Float {
    #if arch(x86_64)
    var m = unsafeBitCast(v, to: __m256.self)
    let none = _mm256_set1_ps(-.infinity)
    var left = k
    while true {
        let t = broadcastMax(m)
        let top = unsafeBitCast(t, to: SIMD8<Float>.self)[0]
        let eq = _mm256_cmpeq_epi32(_mm256_castps_si256(m), _mm256_castps_si256(t))
        let held = Int(_mm256_movemask_ps(_mm256_castsi256_ps(eq)).nonzeroBitCount)
        if held >= left || top == -.infinity { return top }
        left -= held
        m = _mm256_blendv_ps(m, none, _mm256_castsi256_ps(eq))
    }
    #else
    return (0..<8).map { v[$0] }.sorted(by: >)[k - 1]
    #endif
}

/// The `k`-th largest (k >= 1) of the 32 lanes of `a` and `b`, counting equal lanes as many
/// times as they occur (0 when fewer than k lanes are above 0). A loop over the lanes testing
/// each one's count was branchy (~a quarter of the bounded fast-scan of a short list).
@inline(__always)
func kthLargest(_ a: SIMD16<UInt16>, _ b: SIMD16<UInt16>, _ k: Int) -> UInt16 {
    #if arch(x86_64)
    var x = unsafeBitCast(a, to: __m256i.self), y = unsafeBitCast(b, to: __m256i.self)
    var left = k
    while true {
        // The largest: the smallest of the complements, through phminposuw.
        let m = unsafeBitCast(_mm256_max_epu16(x, y), to: SIMD16<UInt16>.self)
        let half = _mm_max_epu16(unsafeBitCast(m.lowHalf, to: __m128i.self), unsafeBitCast(m.highHalf, to: __m128i.self))
        let least = _mm_minpos_epu16(_mm_xor_si128(half, _mm_set1_epi16(-1)))
        let top = ~UInt16(truncatingIfNeeded: _mm_cvtsi128_si32(least))
        if top == 0 { return 0 }
        let t = _mm256_set1_epi16(Int16(bitPattern: top))
        let ex = _mm256_cmpeq_epi16(x, t), ey = _mm256_cmpeq_epi16(y, t)
        let held = (Int(UInt32(bitPattern: _mm256_movemask_epi8(ex)).nonzeroBitCount)
                    + Int(UInt32(bitPattern: _mm256_movemask_epi8(ey)).nonzeroBitCount)) / 2
        if held >= left { return top }
        left -= held
        x = _mm256_andnot_si256(ex, x)
        y = _mm256_andnot_si256(ey, y)
    }
    #else
    let all = (0..<16).map { a[$0] } + (0..<16).map { b[$0] }
    return all.sorted(by: >)[k - 1]
    #endif
}

#if arch(x86_64)
/// The largest of the eight lanes of `v`, in every lane (three exchanges and maxima).
@inline(__always)
func broadcastMax(_ v: __m256) -> __m256 {
    var t = _mm256_max_ps(v, _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3)))
    t = _mm256_max_ps(t, _mm256_permutevar8x32_ps(t, _mm256_setr_epi32(2, 3, 0, 1, 6, 7, 4, 5)))
    return _mm256_max_ps(t, _mm256_permutevar8x32_ps(t, _mm256_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6)))
}
#endif
