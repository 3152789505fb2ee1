/// Appends JSON tokens to a byte buffer. Doubles are written in Swift's shortest round-trip form
/// (the digits of `Double.description`), so decoding gives back the same bits; non-finite values
/// are a programming error (JSON cannot carry them).
package struct JSONWriter: TextOutputStream {
    package var bytes: [UInt8] = []

    package init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    package mutating func raw(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    package mutating func byte(_ b: UInt8) { bytes.append(b) }

    /// Decimal digits without going through a String.
    package mutating func int(_ v: Int64) {
        var magnitude = v.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf in
            var i = 20
            repeat {
                i -= 1
                buf[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if v < 0 { bytes.append(UInt8(ascii: "-")) }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<20]))
        }
    }

    /// The digits come through `TextOutputStreamable`: the standard library formats into a stack
    /// buffer and hands the ASCII bytes to `_writeASCII` below, where `description` would build
    /// a `String` (a heap allocation past 15 bytes): ~48 against ~85 ns per value, and a state
    /// holds ~90 values (the worker writes one per changed user and batch).
    package mutating func double(_ v: Double) {
        precondition(v.isFinite, "JSONWriter: \(v) cannot be written as JSON")
        v.write(to: &self)
    }

    /// `TextOutputStream`; only `double` writes through it.
    package mutating func write(_ string: String) { bytes.append(contentsOf: string.utf8) }

    /// The standard library's fast path for ASCII output (falls back to `write(_:)` if absent).
    package mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) { bytes.append(contentsOf: buffer) }

    package mutating func doubles(_ vs: [Double]) {
        byte(UInt8(ascii: "["))
        for (i, v) in vs.enumerated() {
            if i > 0 { byte(UInt8(ascii: ",")) }
            double(v)
        }
        byte(UInt8(ascii: "]"))
    }

    /// A quoted string; escapes '"', '\\' and control characters, keeps other UTF-8 as is.
    package mutating func string(_ s: String) {
        byte(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0a: raw("\\n")
            case 0x0d: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                byte(hex[Int(b >> 4)])
                byte(hex[Int(b & 0xf)])
            default: byte(b)
            }
        }
        byte(UInt8(ascii: "\""))
    }
}
