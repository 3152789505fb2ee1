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
    let swap128 = _mm256_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3)
    let swap64 = _mm256_setr_epi32(2, 3, 0, 1, 6, 7, 4, 5)
    let swap32 = _mm256_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6)
    var left = k
    while true {
        var t = _mm256_max_ps(m, _mm256_permutevar8x32_ps(m, swap128))
        t = _mm256_max_ps(t, _mm256_permutevar8x32_ps(t, swap64))
        t = _mm256_max_ps(t, _mm256_permutevar8x32_ps(t, swap32))
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
