#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// The 4-bit fast-scan kernel: per-query lookup tables quantized to bytes, 16 table lookups per
/// byte shuffle, sums in 16-bit lanes.
///
/// On x86-64 the kernel is written with the AVX2 intrinsics (the module is built with
/// `-target-cpu haswell`): one 256-bit `vpshufb` looks up all 32 entries of a block for one
/// sub-quantizer, half the instructions of two 128-bit shuffles. LLVM does not recognise a
/// 32-lane `table[index[i]]` loop as that instruction (it spills every lane), so the portable
/// fallback below keeps the 16-lane form, which it does lower to one `pshufb` / `tbl` as long
/// as the index vector stays a vector (hence `keep` and the `sink` store).
enum FastScan {
    /// Bytes of the kernel's table for M sub-quantizers: per pair (2p, 2p + 1) 64 bytes, table
    /// 2p twice then table 2p + 1 twice (a 256-bit shuffle looks up within each 128-bit half).
    static func kernelTableBytes(subquantizers m: Int) -> Int { m * 32 }

    /// Quantizes a float table (M × 16, entry m·16 + c) to 0...127:
    /// q[m][c] = round((t[m][c] - min_m) · scale), so that for any code
    /// Σ_m t[m][c_m] ≈ bias + (Σ_m q[m][c_m]) / scale with bias = Σ_m min_m.
    /// One scale for all m keeps the 16-bit sums comparable; M·127 must fit in 16 bits.
    /// Seven bits, not eight: two looked-up bytes then add without a carry, so the kernel splits
    /// a pair's sum into its two entries once instead of each lookup (one shift fewer per
    /// sub-quantizer pair on the shuffle/shift ports the kernel is bound by).
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
        let scale: Float = maxSpan > 0 ? Float(levels) / maxSpan : 1
        for s in 0..<m {
            var lo = table[s * 16]
            for c in 1..<16 { lo = min(lo, table[s * 16 + c]) }
            for c in 0..<16 {
                let v = ((table[s * 16 + c] - lo) * scale).rounded()
                q[s * 16 + c] = UInt8(max(0, min(Float(levels), v)))
            }
        }
        return (bias, 1 / scale)
    }

    /// The largest quantized table entry.
    static let levels = 127

    /// Lays the quantized tables (M × 16 bytes) out as the kernel reads them
    /// (`kernelTableBytes` bytes at `out`).
    static func kernelTable(_ q: UnsafePointer<UInt8>, subquantizers m: Int, into out: UnsafeMutablePointer<UInt8>) {
        for p in 0..<(m / 2) {
            let dst = out + p * 64
            for c in 0..<16 {
                dst[c] = q[2 * p * 16 + c]
                dst[16 + c] = q[2 * p * 16 + c]
                dst[32 + c] = q[(2 * p + 1) * 16 + c]
                dst[48 + c] = q[(2 * p + 1) * 16 + c]
            }
        }
    }

    /// Position in the block of the entry whose sum is lane `lane` (0..<32) of
    /// `(even, odd)` as `accumulate` returns them: even lane i is entry (i / 8)·16 + 2·(i % 8),
    /// odd lane i the entry after it.
    @inline(__always)
    static func entry(ofLane lane: Int) -> Int {
        let odd = lane >> 4, i = lane & 15
        return (i >> 3) * 16 + 2 * (i & 7) + odd
    }

    /// The lanes of `(even, odd)` whose sum is at least `need`, two bits per lane: lane L
    /// (`entry(ofLane:)` order) owns bits 2L and 2L + 1. Lets a scan visit only the entries
    /// that can enter its heap.
    @inline(__always)
    static func lanes(_ even: SIMD16<UInt16>, _ odd: SIMD16<UInt16>, atLeast need: UInt16) -> UInt64 {
        #if arch(x86_64)
        let n = _mm256_set1_epi16(Int16(bitPattern: need))
        let e = unsafeBitCast(even, to: __m256i.self), o = unsafeBitCast(odd, to: __m256i.self)
        let ge = _mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_max_epu16(e, n), e))
        let go = _mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_max_epu16(o, n), o))
        return UInt64(UInt32(bitPattern: ge)) | UInt64(UInt32(bitPattern: go)) << 32
        #else
        var bits: UInt64 = 0
        for i in 0..<16 {
            if even[i] >= need { bits |= 3 << UInt64(2 * i) }
            if odd[i] >= need { bits |= 3 << UInt64(32 + 2 * i) }
        }
        return bits
        #endif
    }

    /// `(even, odd)` with the lanes whose entry (`entry(ofLane:)`, 0..<32 within the block) is
    /// outside `entries` set to 0.
    @inline(__always)
    static func zeroingLanes(_ even: SIMD16<UInt16>, _ odd: SIMD16<UInt16>,
                             outside entries: Range<Int>) -> (SIMD16<UInt16>, SIMD16<UInt16>) {
        let lo = Int16(clamping: max(-1, min(33, entries.lowerBound))), hi = Int16(clamping: max(-1, min(33, entries.upperBound)))
        #if arch(x86_64)
        // Even lane i is entry (i / 8)·16 + 2·(i % 8); odd lane i the entry after it.
        let evenAt = _mm256_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
        let oddAt = _mm256_add_epi16(evenAt, _mm256_set1_epi16(1))
        let loM1 = _mm256_set1_epi16(lo &- 1), hiV = _mm256_set1_epi16(hi)
        func keep(_ v: SIMD16<UInt16>, _ at: __m256i) -> SIMD16<UInt16> {
            let inside = _mm256_and_si256(_mm256_cmpgt_epi16(at, loM1), _mm256_cmpgt_epi16(hiV, at))
            return unsafeBitCast(_mm256_and_si256(unsafeBitCast(v, to: __m256i.self), inside), to: SIMD16<UInt16>.self)
        }
        return (keep(even, evenAt), keep(odd, oddAt))
        #else
        var e = even, o = odd
        for lane in 0..<32 where !(Int(lo)..<Int(max(lo, hi))).contains(entry(ofLane: lane)) {
            if lane < 16 { e[lane] = 0 } else { o[lane - 16] = 0 }
        }
        return (e, o)
        #endif
    }

    /// Sums of the quantized table entries of the 32 entries of one packed block (lane order:
    /// `entry(ofLane:)`). `table` is the kernel table (`kernelTable`); `sink` is 32 writable
    /// bytes the portable fallback stores to.
    @inline(__always)
    static func accumulate(_ table: UnsafePointer<UInt8>, block: UnsafePointer<UInt8>, subquantizers m: Int,
                           sink: UnsafeMutableRawPointer) -> (even: SIMD16<UInt16>, odd: SIMD16<UInt16>) {
        #if arch(x86_64)
        let t = UnsafeRawPointer(table), c = UnsafeRawPointer(block)
        let mask = _mm256_set1_epi8(0x0F)
        var a = _mm256_setzero_si256(), b = _mm256_setzero_si256()
        for p in 0..<(m / 2) {
            let codes = c.loadUnaligned(fromByteOffset: p * 32, as: __m256i.self)
            let lo = _mm256_and_si256(codes, mask)
            let hi = _mm256_and_si256(_mm256_srli_epi16(codes, 4), mask)
            // Each 16-bit lane holds two entries' bytes: the low byte (even entry) and the high
            // byte (odd entry); table bytes are at most 127, so w + x fits a byte. a collects
            // low + 256·high (mod 2^16), b the high bytes alone.
            let w = _mm256_shuffle_epi8(t.loadUnaligned(fromByteOffset: p * 64, as: __m256i.self), lo)
            let x = _mm256_shuffle_epi8(t.loadUnaligned(fromByteOffset: p * 64 + 32, as: __m256i.self), hi)
            let wx = _mm256_add_epi8(w, x)
            a = _mm256_add_epi16(a, wx)
            b = _mm256_add_epi16(b, _mm256_srli_epi16(wx, 8))
        }
        let odd = unsafeBitCast(b, to: SIMD16<UInt16>.self)
        return (unsafeBitCast(a, to: SIMD16<UInt16>.self) &- (odd &<< 8), odd)
        #else
        let t = UnsafeRawPointer(table), c = UnsafeRawPointer(block)
        let mask = SIMD16<UInt8>(repeating: 0x0F)
        var a0 = SIMD8<UInt16>(), b0 = SIMD8<UInt16>(), a1 = SIMD8<UInt16>(), b1 = SIMD8<UInt16>()
        var keep = SIMD16<UInt8>()
        for p in 0..<(m / 2) {
            let c0 = c.loadUnaligned(fromByteOffset: p * 32, as: SIMD16<UInt8>.self)
            let c1 = c.loadUnaligned(fromByteOffset: p * 32 + 16, as: SIMD16<UInt8>.self)
            let lo0 = c0 & mask, lo1 = c1 & mask
            let hi0 = unsafeBitCast(unsafeBitCast(c0, to: SIMD8<UInt16>.self) &>> 4, to: SIMD16<UInt8>.self) & mask
            let hi1 = unsafeBitCast(unsafeBitCast(c1, to: SIMD8<UInt16>.self) &>> 4, to: SIMD16<UInt8>.self) & mask
            keep |= (lo0 | hi0) | (lo1 | hi1)
            let tLo = t.loadUnaligned(fromByteOffset: p * 64, as: SIMD16<UInt8>.self)
            let tHi = t.loadUnaligned(fromByteOffset: p * 64 + 32, as: SIMD16<UInt8>.self)
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
        let e0 = a0 &- (b0 &<< 8), e1 = a1 &- (b1 &<< 8)
        return (SIMD16(lowHalf: e0, highHalf: e1), SIMD16(lowHalf: b0, highHalf: b1))
        #endif
    }

    #if !arch(x86_64)
    @inline(__always)
    static func shuffle(_ table: SIMD16<UInt8>, _ index: SIMD16<UInt8>) -> SIMD16<UInt8> {
        var r = SIMD16<UInt8>()
        for i in 0..<16 { r[i] = table[Int(index[i])] }
        return r
    }
    #endif
}
