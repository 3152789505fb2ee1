/// Appends JSON tokens to a byte buffer. Doubles are written in Swift's shortest round-trip form
/// (`Double.description`), so decoding gives back the same bits; non-finite values are a
/// programming error (JSON cannot carry them).
package struct JSONWriter {
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

    package mutating func double(_ v: Double) {
        precondition(v.isFinite, "JSONWriter: \(v) cannot be written as JSON")
        bytes.append(contentsOf: v.description.utf8)
    }

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
