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
