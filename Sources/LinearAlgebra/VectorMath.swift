/// Small-vector kernels for the hot paths (embedding dimension ~32-256), where a BLAS call's
/// overhead would dominate. Eight-lane SIMD with a scalar tail; summation order is fixed, so
/// results are deterministic.
public enum VectorMath {
    @inlinable
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= count {
            let a0 = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let b0 = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            let a1 = UnsafeRawPointer(x + i + 8).loadUnaligned(as: SIMD8<Float>.self)
            let b1 = UnsafeRawPointer(y + i + 8).loadUnaligned(as: SIMD8<Float>.self)
            acc0 += a0 * b0
            acc1 += a1 * b1
            i += 16
        }
        while i + 8 <= count {
            acc0 += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                * UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = (acc0 + acc1).sum()
        while i < count { s += x[i] * y[i]; i += 1 }
        return s
    }

    /// The float32 dot product rounded once: products and sum in float64, then rounded to
    /// float32. Independent of summation order up to float64 rounding, so two implementations
    /// (this one and numpy's) agree bit for bit where a float32 accumulation would differ by an
    /// ulp and flip the order of near-tied items.
    @inlinable
    public static func dotRounded(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD4<Double>(), acc1 = SIMD4<Double>()
        var i = 0
        // Four floats per load, each widened whole (one vcvtps2pd with AVX): loading eight and
        // splitting them into halves compiled to a shuffle per lane.
        while i + 8 <= count {
            let a0 = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD4<Float>.self)
            let b0 = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD4<Float>.self)
            let a1 = UnsafeRawPointer(x + i + 4).loadUnaligned(as: SIMD4<Float>.self)
            let b1 = UnsafeRawPointer(y + i + 4).loadUnaligned(as: SIMD4<Float>.self)
            acc0 += SIMD4<Double>(a0) * SIMD4<Double>(b0)
            acc1 += SIMD4<Double>(a1) * SIMD4<Double>(b1)
            i += 8
        }
        var s = (acc0 + acc1).sum()
        while i < count { s += Double(x[i]) * Double(y[i]); i += 1 }
        return Float(s)
    }

    public static func dot(_ x: [Float], _ y: [Float]) -> Float {
        precondition(x.count == y.count, "dot: \(x.count) vs \(y.count) entries")
        return x.withUnsafeBufferPointer { a in
            y.withUnsafeBufferPointer { b in
                guard let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
                return dot(pa, pb, count: x.count)
            }
        }
    }

    /// Euclidean norm, accumulated in Double for stability.
    public static func norm(_ x: UnsafeBufferPointer<Float>) -> Double {
        var s = 0.0
        for v in x { s += Double(v) * Double(v) }
        return s.squareRoot()
    }

    /// Scales x to unit length in place; leaves an all-zero vector as is. Returns the norm.
    @discardableResult
    public static func normalize(_ x: inout [Float]) -> Double {
        let n = x.withUnsafeBufferPointer { norm($0) }
        if n > 0 {
            let inv = 1.0 / n
            for i in x.indices { x[i] = Float(Double(x[i]) * inv) }
        }
        return n
    }
}
