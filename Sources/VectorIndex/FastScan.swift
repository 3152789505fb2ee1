/// The 4-bit fast-scan kernel: per-query lookup tables quantized to bytes, 16 table lookups per
/// SIMD byte shuffle, sums in 16-bit lanes.
///
/// The shuffle is written as `table[index[i]]` over SIMD16 lanes; LLVM lowers that pattern to
/// one `pshufb` (needs SSSE3: the module is built with `-target-cpu haswell`). LLVM only does so
/// while the index vector stays a vector: if the nibble masks' only users are the 16 lane
/// extractions, it scalarizes the masks and then the lookups (16 byte loads per shuffle), so
/// the kernel also ORs the masked vectors into `keep` and stores it to a scratch `sink`.
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

    @inline(__always)
    static func shuffle(_ table: SIMD16<UInt8>, _ index: SIMD16<UInt8>) -> SIMD16<UInt8> {
        var r = SIMD16<UInt8>()
        for i in 0..<16 { r[i] = table[Int(index[i])] }
        return r
    }

    /// Sums of the quantized table entries of the 32 entries of one packed block, in four
    /// vectors: lane l of `even0` is entry 2l, of `odd0` entry 2l + 1, of `even1` entry 16 + 2l,
    /// of `odd1` entry 17 + 2l. `lut` holds M tables of 16 bytes.
    @inline(__always)
    static func accumulate(_ lut: UnsafePointer<UInt8>, block: UnsafePointer<UInt8>, subquantizers m: Int,
                           sink: UnsafeMutableRawPointer)
        -> (even0: SIMD8<UInt16>, odd0: SIMD8<UInt16>, even1: SIMD8<UInt16>, odd1: SIMD8<UInt16>)
    {
        let t = UnsafeRawPointer(lut), c = UnsafeRawPointer(block)
        let mask = SIMD16<UInt8>(repeating: 0x0F)
        var a0 = SIMD8<UInt16>(), b0 = SIMD8<UInt16>(), a1 = SIMD8<UInt16>(), b1 = SIMD8<UInt16>()
        // `keep` gives the masked index vectors a vector use besides the lookups; without it
        // LLVM scalarizes the masks and with them the whole shuffle (see the type comment).
        var keep = SIMD16<UInt8>()
        for p in 0..<(m / 2) {
            let c0 = c.loadUnaligned(fromByteOffset: p * 32, as: SIMD16<UInt8>.self)
            let c1 = c.loadUnaligned(fromByteOffset: p * 32 + 16, as: SIMD16<UInt8>.self)
            let lo0 = c0 & mask, lo1 = c1 & mask
            let hi0 = unsafeBitCast(unsafeBitCast(c0, to: SIMD8<UInt16>.self) &>> 4, to: SIMD16<UInt8>.self) & mask
            let hi1 = unsafeBitCast(unsafeBitCast(c1, to: SIMD8<UInt16>.self) &>> 4, to: SIMD16<UInt8>.self) & mask
            keep |= (lo0 | hi0) | (lo1 | hi1)
            let tLo = t.loadUnaligned(fromByteOffset: p * 32, as: SIMD16<UInt8>.self)
            let tHi = t.loadUnaligned(fromByteOffset: p * 32 + 16, as: SIMD16<UInt8>.self)
            // Each 16-bit lane holds two entries' bytes: the low byte (even entry) and the high
            // byte (odd entry). a collects low + 256·high (mod 2^16), b the high bytes alone.
            let w0 = unsafeBitCast(shuffle(tLo, lo0), to: SIMD8<UInt16>.self)
            let x0 = unsafeBitCast(shuffle(tHi, hi0), to: SIMD8<UInt16>.self)
            let w1 = unsafeBitCast(shuffle(tLo, lo1), to: SIMD8<UInt16>.self)
            let x1 = unsafeBitCast(shuffle(tHi, hi1), to: SIMD8<UInt16>.self)
            a0 &+= w0 &+ x0
            b0 &+= (w0 &>> 8) &+ (x0 &>> 8)
            a1 &+= w1 &+ x1
            b1 &+= (w1 &>> 8) &+ (x1 &>> 8)
        }
        sink.storeBytes(of: keep, as: SIMD16<UInt8>.self)
        return (a0 &- (b0 &<< 8), b0, a1 &- (b1 &<< 8), b1)
    }
}
