/// The 4-bit fast-scan kernel: per-query lookup tables quantized to bytes, 16 table lookups per
/// SIMD byte shuffle, sums in 16-bit lanes.
///
/// The shuffle is written as `table[index[i]]` over SIMD16 lanes; LLVM lowers that pattern to
/// one `pshufb` (SSSE3/AVX) when the index vector comes straight from memory. Masking the
/// nibbles in the same function makes LLVM scalarize the lookups instead, so each block is
/// first unpacked (nibbles to bytes) by a separate, non-inlined function into a small scratch
/// buffer that the kernel then loads.
enum FastScan {
    /// Quantizes a float table (M × 16, entry m·16 + c) to bytes for the kernel:
    /// q[m][c] = round((t[m][c] - min_m) · scale), so that for any code
    /// Σ_m t[m][c_m] ≈ bias + (Σ_m q[m][c_m]) / scale with bias = Σ_m min_m.
    /// One scale for all m keeps the 16-bit sums comparable; M·255 must fit in 16 bits.
    static func quantize(_ table: UnsafePointer<Float>, subquantizers m: Int,
                         into q: UnsafeMutablePointer<UInt8>) -> (bias: Float, invScale: Float) {
        var bias: Float = 0
        var maxSpan: Float = 0
        for s in 0..<m {
            var lo = table[s * 16], hi = lo
            for c in 1..<16 { lo = min(lo, table[s * 16 + c]); hi = max(hi, table[s * 16 + c]) }
            bias += lo
            maxSpan = max(maxSpan, hi - lo)
        }
        let scale: Float = maxSpan > 0 ? 255 / maxSpan : 1
        for s in 0..<m {
            var lo = table[s * 16]
            for c in 1..<16 { lo = min(lo, table[s * 16 + c]) }
            for c in 0..<16 {
                let v = ((table[s * 16 + c] - lo) * scale).rounded()
                q[s * 16 + c] = UInt8(max(0, min(255, v)))
            }
        }
        return (bias, 1 / scale)
    }

    /// Splits a packed block (M/2 × 32 bytes) into M rows of 32 one-code bytes.
    @inline(never)
    static func unpack(_ block: UnsafePointer<UInt8>, subquantizers m: Int, into scratch: UnsafeMutablePointer<UInt8>) {
        let src = UnsafeRawPointer(block)
        let dst = UnsafeMutableRawPointer(scratch)
        let mask = SIMD4<UInt64>(repeating: 0x0F0F_0F0F_0F0F_0F0F)
        for p in 0..<(m / 2) {
            let v = src.loadUnaligned(fromByteOffset: p * 32, as: SIMD4<UInt64>.self)
            dst.storeBytes(of: v & mask, toByteOffset: p * 64, as: SIMD4<UInt64>.self)
            dst.storeBytes(of: (v &>> 4) & mask, toByteOffset: p * 64 + 32, as: SIMD4<UInt64>.self)
        }
    }

    @inline(__always)
    static func shuffle(_ table: SIMD16<UInt8>, _ index: SIMD16<UInt8>) -> SIMD16<UInt8> {
        var r = SIMD16<UInt8>()
        for i in 0..<16 { r[i] = table[Int(index[i])] }
        return r
    }

    /// Sums of the quantized table entries of 32 entries (one unpacked block), in four vectors:
    /// lane l of `even0` is entry 2l, of `odd0` entry 2l + 1, of `even1` entry 16 + 2l, of
    /// `odd1` entry 17 + 2l.
    @inline(__always)
    static func accumulate(_ lut: UnsafePointer<UInt8>, _ scratch: UnsafePointer<UInt8>, subquantizers m: Int)
        -> (even0: SIMD8<UInt16>, odd0: SIMD8<UInt16>, even1: SIMD8<UInt16>, odd1: SIMD8<UInt16>)
    {
        let t = UnsafeRawPointer(lut), c = UnsafeRawPointer(scratch)
        var a0 = SIMD8<UInt16>(), b0 = SIMD8<UInt16>(), a1 = SIMD8<UInt16>(), b1 = SIMD8<UInt16>()
        for s in 0..<m {
            let table = t.loadUnaligned(fromByteOffset: s * 16, as: SIMD16<UInt8>.self)
            let i0 = c.loadUnaligned(fromByteOffset: s * 32, as: SIMD16<UInt8>.self)
            let i1 = c.loadUnaligned(fromByteOffset: s * 32 + 16, as: SIMD16<UInt8>.self)
            let w0 = unsafeBitCast(shuffle(table, i0), to: SIMD8<UInt16>.self)
            let w1 = unsafeBitCast(shuffle(table, i1), to: SIMD8<UInt16>.self)
            // Each 16-bit lane holds two entries' bytes: the low byte (even entry) and the high
            // byte (odd entry). a collects low + 256·high (mod 2^16), b the high bytes alone.
            a0 &+= w0
            b0 &+= w0 &>> 8
            a1 &+= w1
            b1 &+= w1 &>> 8
        }
        return (a0 &- (b0 &<< 8), b0, a1 &- (b1 &<< 8), b1)
    }
}
