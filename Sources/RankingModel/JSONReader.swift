#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON problem at a byte offset: either bad syntax or a value of the wrong type/range for a
/// named field. Callers prefix the file/line/record they were reading.
struct JSONProblem: Error {
    var message: String
    var offset: Int
    /// true for malformed JSON; false for a well-formed value that the schema rejects.
    var isSyntax: Bool

    /// "invalid JSON at byte 17: expected ':'" or "field 'ts': expected an integer, got a string".
    var text: String { isSyntax ? "invalid JSON at byte \(offset + 1): \(message)" : message }
}

/// An object key as read: its raw UTF-8 bytes when it had no escapes (the common case, compared
/// without allocating), or the decoded string.
struct JSONKey {
    fileprivate let raw: UnsafeBufferPointer<UInt8>
    fileprivate let decoded: String?

    func `is`(_ name: StaticString) -> Bool {
        if let decoded { return decoded == name.description }
        guard raw.count == name.utf8CodeUnitCount else { return false }
        return raw.count == 0 || memcmp(raw.baseAddress!, name.utf8Start, raw.count) == 0
    }

    var string: String { decoded ?? String(decoding: raw, as: UTF8.self) }
}

enum JSONNumber {
    case integer(Int64)
    case double(Double)

    var doubleValue: Double {
        switch self {
        case .integer(let i): Double(i)
        case .double(let d): d
        }
    }
}

/// A forward-only reader over UTF-8 JSON bytes for this module's fixed schemas (items.jsonl
/// lines, user-activity records, user-state documents, manifests, safetensors headers). It never
/// builds a document tree; the caller walks the structure and pulls typed values, which keeps
/// parsing a million items.jsonl lines cheap. The bytes must outlive the reader.
struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var pos = 0
    private static let maxDepth = 256

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    struct Container { fileprivate var first = true }

    // MARK: structure

    var isAtEnd: Bool { mutating get { skipWhitespace(); return pos >= bytes.count } }

    /// Requires nothing but whitespace to remain.
    mutating func expectEnd() throws(JSONProblem) {
        skipWhitespace()
        if pos < bytes.count { throw syntax("unexpected \(describe(bytes[pos])) after the value") }
    }

    mutating func beginObject(field: String? = nil) throws(JSONProblem) -> Container {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "{") else { throw typeMismatch("an object", field) }
        pos += 1
        return Container()
    }

    /// The next key of the object (its ':' consumed), or nil at the closing brace.
    mutating func nextKey(_ c: inout Container) throws(JSONProblem) -> JSONKey? {
        skipWhitespace()
        guard pos < bytes.count else { throw syntax("unterminated object") }
        if bytes[pos] == UInt8(ascii: "}") { pos += 1; return nil }
        if c.first {
            c.first = false
        } else {
            guard bytes[pos] == UInt8(ascii: ",") else { throw syntax("expected ',' or '}' in an object") }
            pos += 1
            skipWhitespace()
        }
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw syntax("expected a quoted key") }
        let key = try readKey()
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw syntax("expected ':' after a key") }
        pos += 1
        return key
    }

    mutating func beginArray(field: String? = nil) throws(JSONProblem) -> Container {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "[") else { throw typeMismatch("an array", field) }
        pos += 1
        return Container()
    }

    /// true when another element follows (positioned at it), false at the closing bracket.
    mutating func nextElement(_ c: inout Container) throws(JSONProblem) -> Bool {
        skipWhitespace()
        guard pos < bytes.count else { throw syntax("unterminated array") }
        if bytes[pos] == UInt8(ascii: "]") { pos += 1; return false }
        if c.first {
            c.first = false
        } else {
            guard bytes[pos] == UInt8(ascii: ",") else { throw syntax("expected ',' or ']' in an array") }
            pos += 1
        }
        skipWhitespace()
        return true
    }

    // MARK: values

    /// Consumes a `null` and returns true, or returns false leaving the position unchanged.
    mutating func readNullIfPresent() throws(JSONProblem) -> Bool {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    mutating func readBool(field: String? = nil) throws(JSONProblem) -> Bool {
        skipWhitespace()
        if pos < bytes.count {
            if bytes[pos] == UInt8(ascii: "t") { try literal("true"); return true }
            if bytes[pos] == UInt8(ascii: "f") { try literal("false"); return false }
        }
        throw typeMismatch("true or false", field)
    }

    mutating func readString(field: String? = nil) throws(JSONProblem) -> String {
        let (raw, decoded) = try readStringBytes(field: field)
        if let decoded { return decoded }
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw JSONProblem(message: "\(fieldPrefix(field))invalid UTF-8 in a string", offset: pos, isSyntax: true)
        }
        return s
    }

    /// A string as raw bytes when it had no escapes (not UTF-8 validated: for comparing with
    /// known names), else decoded.
    mutating func readStringBytes(field: String? = nil) throws(JSONProblem) -> (UnsafeBufferPointer<UInt8>, String?) {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw typeMismatch("a string", field) }
        let key = try readKey()
        return (key.raw, key.decoded)
    }

    mutating func readNumber(field: String? = nil) throws(JSONProblem) -> JSONNumber {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "-") || isDigit(bytes[pos]) else {
            throw typeMismatch("a number", field)
        }
        return try scanNumber(field: field)
    }

    /// A finite number as Double (integers are converted).
    mutating func readDouble(field: String? = nil) throws(JSONProblem) -> Double {
        try readNumber(field: field).doubleValue
    }

    /// An integer; an integral number written with a fraction or exponent ("5300.0") is accepted.
    mutating func readInt64(field: String? = nil) throws(JSONProblem) -> Int64 {
        skipWhitespace()
        let start = pos
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "-") || isDigit(bytes[pos]) else {
            throw typeMismatch("an integer", field)
        }
        switch try scanNumber(field: field) {
        case .integer(let i): return i
        case .double(let d):
            if d == d.rounded(), let i = Int64(exactly: d) { return i }
            throw JSONProblem(message: "\(fieldPrefix(field))expected an integer, got \(text(from: start))",
                              offset: start, isSyntax: false)
        }
    }

    /// Skips one value of any type (an unknown field).
    mutating func skipValue() throws(JSONProblem) { try skipValue(depth: 0) }

    private mutating func skipValue(depth: Int) throws(JSONProblem) {
        guard depth < Self.maxDepth else { throw syntax("nesting deeper than \(Self.maxDepth)") }
        skipWhitespace()
        guard pos < bytes.count else { throw syntax("expected a value, found the end") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            var c = try beginObject()
            while try nextKey(&c) != nil { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            var c = try beginArray()
            while try nextElement(&c) { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""): _ = try readKey()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default:
            guard bytes[pos] == UInt8(ascii: "-") || isDigit(bytes[pos]) else {
                throw syntax("unexpected \(describe(bytes[pos]))")
            }
            _ = try scanNumber()
        }
    }

    // MARK: errors

    func typeMismatch(_ expected: String, _ field: String?) -> JSONProblem {
        guard pos < bytes.count else {
            return JSONProblem(message: "expected \(expected), found the end", offset: pos, isSyntax: true)
        }
        let found: String
        switch bytes[pos] {
        case UInt8(ascii: "{"): found = "an object"
        case UInt8(ascii: "["): found = "an array"
        case UInt8(ascii: "\""): found = "a string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): found = "a boolean"
        case UInt8(ascii: "n"): found = "null"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): found = "a number"
        default:
            return syntax("unexpected \(describe(bytes[pos]))")
        }
        return JSONProblem(message: "\(fieldPrefix(field))expected \(expected), got \(found)", offset: pos, isSyntax: false)
    }

    /// A schema error about the value that was just read (or is about to be).
    func invalid(_ field: String?, _ message: String) -> JSONProblem {
        JSONProblem(message: "\(fieldPrefix(field))\(message)", offset: pos, isSyntax: false)
    }

    private func syntax(_ message: String) -> JSONProblem {
        JSONProblem(message: message, offset: pos, isSyntax: true)
    }

    private func fieldPrefix(_ field: String?) -> String { field.map { "field '\($0)': " } ?? "" }

    private func describe(_ b: UInt8) -> String {
        (0x21...0x7e).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
    }

    private func text(from start: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<min(pos, start + 40)]), as: UTF8.self)
    }

    // MARK: scanning

    @inline(__always)
    private mutating func skipWhitespace() {
        while pos < bytes.count {
            let b = bytes[pos]
            guard b == 0x20 || b == 0x0a || b == 0x0d || b == 0x09 else { return }
            pos += 1
        }
    }

    @inline(__always)
    private func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    private mutating func literal(_ word: StaticString) throws(JSONProblem) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count, memcmp(bytes.baseAddress! + pos, word.utf8Start, n) == 0 else {
            throw syntax("expected '\(word)'")
        }
        pos += n
    }

    /// At an opening quote: reads the string, raw when escape-free.
    private mutating func readKey() throws(JSONProblem) -> JSONKey {
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
    private mutating func scanNumber(field: String? = nil) throws(JSONProblem) -> JSONNumber {
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
