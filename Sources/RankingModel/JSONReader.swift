#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON problem at a byte offset: either bad syntax or a value of the wrong type/range for a
/// named field. Callers prefix the file/line/record they were reading.
package struct JSONProblem: Error {
    package var message: String
    package var offset: Int
    /// true for malformed JSON; false for a well-formed value that the schema rejects.
    package var isSyntax: Bool

    /// "invalid JSON at byte 17: expected ':'" or "field 'ts': expected an integer, got a string".
    package var text: String { isSyntax ? "invalid JSON at byte \(offset + 1): \(message)" : message }
}

/// An object key as read: its raw UTF-8 bytes when it had no escapes (the common case, compared
/// without allocating), or the decoded string.
package struct JSONKey {
    package let raw: UnsafeBufferPointer<UInt8>
    package let decoded: String?

    package func `is`(_ name: StaticString) -> Bool {
        if let decoded { return decoded == name.description }
        guard raw.count == name.utf8CodeUnitCount else { return false }
        return raw.count == 0 || memcmp(raw.baseAddress!, name.utf8Start, raw.count) == 0
    }

    package var string: String { decoded ?? String(decoding: raw, as: UTF8.self) }
}

package enum JSONNumber {
    case integer(Int64)
    case double(Double)

    package var doubleValue: Double {
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
package struct JSONReader {
    package let bytes: UnsafeBufferPointer<UInt8>
    package var pos = 0
    package static let maxDepth = 256

    package init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    package struct Container { fileprivate var first = true }

    // MARK: structure

    package var isAtEnd: Bool { mutating get { skipWhitespace(); return pos >= bytes.count } }

    /// Requires nothing but whitespace to remain.
    package mutating func expectEnd() throws(JSONProblem) {
        skipWhitespace()
        if pos < bytes.count { throw syntax("unexpected \(describe(bytes[pos])) after the value") }
    }

    package mutating func beginObject(field: String? = nil) throws(JSONProblem) -> Container {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "{") else { throw typeMismatch("an object", field) }
        pos += 1
        return Container()
    }

    /// The next key of the object (its ':' consumed), or nil at the closing brace.
    package mutating func nextKey(_ c: inout Container) throws(JSONProblem) -> JSONKey? {
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

    package mutating func beginArray(field: String? = nil) throws(JSONProblem) -> Container {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "[") else { throw typeMismatch("an array", field) }
        pos += 1
        return Container()
    }

    /// true when another element follows (positioned at it), false at the closing bracket.
    package mutating func nextElement(_ c: inout Container) throws(JSONProblem) -> Bool {
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
    package mutating func readNullIfPresent() throws(JSONProblem) -> Bool {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    package mutating func readBool(field: String? = nil) throws(JSONProblem) -> Bool {
        skipWhitespace()
        if pos < bytes.count {
            if bytes[pos] == UInt8(ascii: "t") { try literal("true"); return true }
            if bytes[pos] == UInt8(ascii: "f") { try literal("false"); return false }
        }
        throw typeMismatch("true or false", field)
    }

    package mutating func readString(field: String? = nil) throws(JSONProblem) -> String {
        let (raw, decoded) = try readStringBytes(field: field)
        if let decoded { return decoded }
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw JSONProblem(message: "\(fieldPrefix(field))invalid UTF-8 in a string", offset: pos, isSyntax: true)
        }
        return s
    }

    /// A string as raw bytes when it had no escapes (not UTF-8 validated: for comparing with
    /// known names), else decoded.
    package mutating func readStringBytes(field: String? = nil) throws(JSONProblem) -> (UnsafeBufferPointer<UInt8>, String?) {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw typeMismatch("a string", field) }
        let key = try readKey()
        return (key.raw, key.decoded)
    }

    package mutating func readNumber(field: String? = nil) throws(JSONProblem) -> JSONNumber {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "-") || isDigit(bytes[pos]) else {
            throw typeMismatch("a number", field)
        }
        return try scanNumber(field: field)
    }

    /// A finite number as Double (integers are converted).
    package mutating func readDouble(field: String? = nil) throws(JSONProblem) -> Double {
        try readNumber(field: field).doubleValue
    }

    /// An integer; an integral number written with a fraction or exponent ("5300.0") is accepted.
    package mutating func readInt64(field: String? = nil) throws(JSONProblem) -> Int64 {
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
    package mutating func skipValue() throws(JSONProblem) { try skipValue(depth: 0) }

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

    package func typeMismatch(_ expected: String, _ field: String?) -> JSONProblem {
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
    package func invalid(_ field: String?, _ message: String) -> JSONProblem {
        JSONProblem(message: "\(fieldPrefix(field))\(message)", offset: pos, isSyntax: false)
    }

    package func syntax(_ message: String) -> JSONProblem {
        JSONProblem(message: message, offset: pos, isSyntax: true)
    }

    package func fieldPrefix(_ field: String?) -> String { field.map { "field '\($0)': " } ?? "" }

    package func describe(_ b: UInt8) -> String {
        (0x21...0x7e).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
    }

    package func text(from start: Int) -> String {
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
    package func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    package mutating func literal(_ word: StaticString) throws(JSONProblem) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count, memcmp(bytes.baseAddress! + pos, word.utf8Start, n) == 0 else {
            throw syntax("expected '\(word)'")
        }
        pos += n
    }
}
