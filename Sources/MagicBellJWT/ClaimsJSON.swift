/// Writes the JSON of User JWT claims so that its base64url encoding is also
/// valid for the browser's `atob()`.
///
/// MagicBell's realtime client decodes the payload with `atob()`, which
/// rejects base64url's `-` and `_`. Those come only from the 6-bit groups 62
/// and 63. For ASCII input that happens only when the third byte of a 3-byte
/// group is `>` (0x3E), `?` (0x3F), `~` (0x7E) or DEL (0x7F); every other
/// group needs a byte >= 0x80. So those four characters and every non-ASCII
/// character are written as `\uXXXX`: the same JSON value, ASCII-only bytes,
/// and no `-` or `_` in the encoded payload, whatever the identity is.
public enum ClaimsJSON {
    public enum Error: Swift.Error, Equatable {
        case invalidUTF8
    }

    /// 0: copy the byte as is; 1: write it escaped.
    @usableFromInline
    static let escapeASCII: [UInt8] = (0..<128).map { byte in
        switch byte {
        case 0..<0x20, 0x22, 0x5C, 0x3E, 0x3F, 0x7E, 0x7F: return 1
        default: return 0
        }
    }

    @usableFromInline
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `bytes`, which must be UTF-8, as a quoted JSON string.
    @inlinable
    public static func appendString(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) throws(Error) {
        out.append(UInt8(ascii: "\""))
        let n = bytes.count
        var i = 0
        while i < n {
            let b = bytes[i]
            if b < 0x80 {
                if escapeASCII[Int(b)] == 0 {
                    out.append(b)
                } else {
                    appendEscapedASCII(b, to: &out)
                }
                i += 1
                continue
            }
            guard let (scalar, length) = decodeScalar(bytes, at: i) else { throw .invalidUTF8 }
            if scalar >= 0x10000 {
                let v = scalar - 0x10000
                appendUnicodeEscape(UInt16(0xD800 + (v >> 10)), to: &out)
                appendUnicodeEscape(UInt16(0xDC00 + (v & 0x3FF)), to: &out)
            } else {
                appendUnicodeEscape(UInt16(scalar), to: &out)
            }
            i += length
        }
        out.append(UInt8(ascii: "\""))
    }

    public static func appendString(_ string: String, to out: inout [UInt8]) throws(Error) {
        var copy = string
        let result: Result<Void, Error> = copy.withUTF8 { buffer in
            do throws(Error) {
                try appendString(buffer, to: &out)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    @inlinable
    static func appendEscapedASCII(_ b: UInt8, to out: inout [UInt8]) {
        let short: UInt8
        switch b {
        case 0x22: short = UInt8(ascii: "\"")
        case 0x5C: short = UInt8(ascii: "\\")
        case 0x0A: short = UInt8(ascii: "n")
        case 0x0D: short = UInt8(ascii: "r")
        case 0x09: short = UInt8(ascii: "t")
        case 0x08: short = UInt8(ascii: "b")
        case 0x0C: short = UInt8(ascii: "f")
        default:
            appendUnicodeEscape(UInt16(b), to: &out)
            return
        }
        out.append(UInt8(ascii: "\\"))
        out.append(short)
    }

    @inlinable
    static func appendUnicodeEscape(_ unit: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "u"))
        out.append(hex[Int(unit >> 12)])
        out.append(hex[Int(unit >> 8 & 0xF)])
        out.append(hex[Int(unit >> 4 & 0xF)])
        out.append(hex[Int(unit & 0xF)])
    }

    /// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
    /// above U+10FFFF. Returns the scalar and its length in bytes.
    @inlinable
    static func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int)? {
        let n = bytes.count
        let b0 = bytes[i]
        @inline(__always) func cont(_ k: Int) -> UInt32? {
            guard i + k < n else { return nil }
            let b = bytes[i + k]
            return b & 0xC0 == 0x80 ? UInt32(b & 0x3F) : nil
        }
        switch b0 {
        case 0xC2...0xDF:
            guard let c1 = cont(1) else { return nil }
            return (UInt32(b0 & 0x1F) << 6 | c1, 2)
        case 0xE0...0xEF:
            guard let c1 = cont(1), let c2 = cont(2) else { return nil }
            let v = UInt32(b0 & 0x0F) << 12 | c1 << 6 | c2
            guard v >= 0x800, !(0xD800...0xDFFF).contains(v) else { return nil }
            return (v, 3)
        case 0xF0...0xF4:
            guard let c1 = cont(1), let c2 = cont(2), let c3 = cont(3) else { return nil }
            let v = UInt32(b0 & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
            guard (0x10000...0x10FFFF).contains(v) else { return nil }
            return (v, 4)
        default:
            return nil
        }
    }

    /// Appends a decimal integer, with no heap allocation.
    @inlinable
    public static func appendInteger(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 digit slots on the stack
        withUnsafeMutableBytes(of: &scratch) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: digits[start...])
        }
    }
}
