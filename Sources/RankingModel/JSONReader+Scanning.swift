#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Token scanning for `JSONReader`: strings (with escapes) and numbers.
extension JSONReader {
    /// At an opening quote: reads the string, raw when escape-free.
    mutating func readKey() throws(JSONProblem) -> JSONKey {
        pos += 1
        let start = pos
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<pos])
                pos += 1
                return JSONKey(raw: raw, decoded: nil)
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw syntax("control character in a string") }
            pos += 1
        }
        guard pos < bytes.count else { throw syntax("unterminated string") }
        // Escapes present: decode into a buffer.
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<pos]))
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw syntax("invalid UTF-8 in a string") }
                return JSONKey(raw: UnsafeBufferPointer(start: nil, count: 0), decoded: s)
            }
            if b < 0x20 { throw syntax("control character in a string") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xd800..<0xdc00).contains(scalar) {
                    guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw syntax("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard (0xdc00..<0xe000).contains(low) else { throw syntax("unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                } else if (0xdc00..<0xe000).contains(scalar) {
                    throw syntax("unpaired surrogate in \\u escape")
                }
                out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
            default:
                pos -= 1
                throw syntax("invalid escape \\\(describe(e))")
            }
        }
        throw syntax("unterminated string")
    }

    private mutating func hex4() throws(JSONProblem) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw syntax("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw syntax("invalid hex digit in \\u escape")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    private static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// JSON number grammar. Integers without fraction/exponent that fit Int64 come back as
    /// `.integer`; everything else as a correctly rounded Double (Clinger's exact fast path,
    /// else the C library's strtod), and non-finite results are rejected.
    mutating func scanNumber(field: String? = nil) throws(JSONProblem) -> JSONNumber {
        let start = pos
        var negative = false
        if bytes[pos] == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        guard pos < bytes.count, isDigit(bytes[pos]) else { throw syntax("invalid number") }
        var mantissa: UInt64 = 0
        var digits = 0          // significant digits accumulated into mantissa
        var dropped = false     // digits beyond what UInt64 holds
        var exponent = 0        // decimal exponent adjustment
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < bytes.count, isDigit(bytes[pos]) { throw syntax("leading zero in a number") }
        } else {
            while pos < bytes.count, isDigit(bytes[pos]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(bytes[pos] - UInt8(ascii: "0"))
                    digits += 1
                } else {
                    dropped = true
                    exponent += 1
                }
                pos += 1
            }
        }
        var integral = true
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            integral = false
            pos += 1
            guard pos < bytes.count, isDigit(bytes[pos]) else { throw syntax("digit expected after '.'") }
            while pos < bytes.count, isDigit(bytes[pos]) {
                if digits < 19 {
                    if mantissa != 0 || bytes[pos] != UInt8(ascii: "0") {
                        mantissa = mantissa &* 10 &+ UInt64(bytes[pos] - UInt8(ascii: "0"))
                        digits += mantissa == 0 ? 0 : 1
                    }
                    exponent -= 1
                } else if bytes[pos] != UInt8(ascii: "0") {
                    dropped = true
                }
                pos += 1
            }
        }
        if pos < bytes.count, bytes[pos] | 0x20 == UInt8(ascii: "e") {
            integral = false
            pos += 1
            var expNegative = false
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") {
                expNegative = bytes[pos] == UInt8(ascii: "-")
                pos += 1
            }
            guard pos < bytes.count, isDigit(bytes[pos]) else { throw syntax("digit expected in exponent") }
            var e = 0
            while pos < bytes.count, isDigit(bytes[pos]) {
                if e < 100_000 { e = e * 10 + Int(bytes[pos] - UInt8(ascii: "0")) }
                pos += 1
            }
            exponent += expNegative ? -e : e
        }
        if integral && !dropped {
            if negative {
                if mantissa <= UInt64(Int64.max) { return .integer(-Int64(mantissa)) }
                if mantissa == UInt64(Int64.max) + 1 { return .integer(Int64.min) }
            } else if mantissa <= UInt64(Int64.max) {
                return .integer(Int64(mantissa))
            }
        }
        if !dropped && mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
            var v = Double(mantissa)
            v = exponent < 0 ? v / Self.exactPowersOfTen[-exponent] : v * Self.exactPowersOfTen[exponent]
            return .double(negative ? -v : v)
        }
        // The C library's correctly rounded strtod on a NUL-terminated stack copy of the token
        // (no String allocation). Should a locale with another decimal point be active, strtod
        // stops early; then Swift's locale-independent parser decides.
        let length = pos - start
        var v = withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buf -> Double? in
            UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: bytes.baseAddress! + start, byteCount: length)
            buf[length] = 0
            var end: UnsafeMutablePointer<CChar>?
            let v = strtod(buf.baseAddress!, &end)
            return end == buf.baseAddress! + length ? v : nil
        }
        if v == nil {
            v = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self))
        }
        guard let v, v.isFinite else {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
            throw JSONProblem(message: "\(fieldPrefix(field))number \(text) is out of range", offset: start, isSyntax: false)
        }
        return .double(v)
    }
}
