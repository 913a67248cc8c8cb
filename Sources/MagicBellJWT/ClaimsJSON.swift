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

    /// For each ASCII byte: 0 copy it as is; otherwise the character after the
    /// backslash of its short escape, or `u` for `\u00XX`.
    @usableFromInline
    nonisolated(unsafe) static let escapes: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 128)
        table.initialize(repeating: 0, count: 128)
        for byte in 0..<0x20 { table[byte] = UInt8(ascii: "u") }
        for byte in [0x3E, 0x3F, 0x7E, 0x7F] { table[byte] = UInt8(ascii: "u") }
        table[0x22] = UInt8(ascii: "\"")
        table[0x5C] = UInt8(ascii: "\\")
        table[0x0A] = UInt8(ascii: "n")
        table[0x0D] = UInt8(ascii: "r")
        table[0x09] = UInt8(ascii: "t")
        table[0x08] = UInt8(ascii: "b")
        table[0x0C] = UInt8(ascii: "f")
        return UnsafePointer(table)
    }()

    @usableFromInline
    nonisolated(unsafe) static let hex: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
        table.initialize(from: Array("0123456789abcdef".utf8), count: 16)
        return UnsafePointer(table)
    }()

    /// The most bytes `writeString` can produce for `count` input bytes:
    /// every byte as `\u00XX`, plus the quotes.
    @inlinable
    package static func maxStringLength(_ count: Int) -> Int { count * 6 + 2 }

    /// Writes `source` (UTF-8) as a quoted JSON string to `destination`, which
    /// must have room for `maxStringLength(source.count)` bytes. Returns the
    /// end, or nil if `source` is not valid UTF-8.
    @inlinable
    package static func writeString(_ source: UnsafeBufferPointer<UInt8>,
                                   to destination: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8>? {
        let escapes = Self.escapes
        var d = destination
        d.pointee = UInt8(ascii: "\"")
        d += 1
        guard let base = source.baseAddress else {
            d.pointee = UInt8(ascii: "\"")
            return d + 1
        }
        let n = source.count
        var i = 0
        while i < n {
            let b = base[i]
            if b < 0x80 {
                let escape = escapes[Int(b)]
                if escape == 0 {
                    d.pointee = b
                    d += 1
                } else if escape == UInt8(ascii: "u") {
                    d = writeUnicodeEscape(UInt16(b), to: d)
                } else {
                    d[0] = UInt8(ascii: "\\")
                    d[1] = escape
                    d += 2
                }
                i += 1
                continue
            }
            guard let (scalar, length) = decodeScalar(base, count: n, at: i) else { return nil }
            if scalar >= 0x10000 {
                let v = scalar - 0x10000
                d = writeUnicodeEscape(UInt16(0xD800 + (v >> 10)), to: d)
                d = writeUnicodeEscape(UInt16(0xDC00 + (v & 0x3FF)), to: d)
            } else {
                d = writeUnicodeEscape(UInt16(scalar), to: d)
            }
            i += length
        }
        d.pointee = UInt8(ascii: "\"")
        return d + 1
    }

    /// Whether `source` is strict UTF-8 (`decodeScalar`'s rules).
    @inlinable
    package static func isValidUTF8(_ source: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = source.baseAddress else { return true }
        let n = source.count
        var i = 0
        while i < n {
            if base[i] < 0x80 {
                i += 1
                continue
            }
            guard let (_, length) = decodeScalar(base, count: n, at: i) else { return false }
            i += length
        }
        return true
    }

    @inlinable
    static func writeUnicodeEscape(_ unit: UInt16, to d: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        let hex = Self.hex
        d[0] = UInt8(ascii: "\\")
        d[1] = UInt8(ascii: "u")
        d[2] = hex[Int(unit >> 12)]
        d[3] = hex[Int(unit >> 8 & 0xF)]
        d[4] = hex[Int(unit >> 4 & 0xF)]
        d[5] = hex[Int(unit & 0xF)]
        return d + 6
    }

    /// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
    /// above U+10FFFF. Returns the scalar and its length in bytes.
    @inlinable
    static func decodeScalar(_ bytes: UnsafePointer<UInt8>, count n: Int, at i: Int) -> (UInt32, Int)? {
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

    /// The most bytes `writeInteger` produces.
    package static let maxIntegerLength = 20

    /// Writes a decimal integer; returns the end.
    @inlinable
    package static func writeInteger(_ value: Int, to destination: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var d = destination
        if value < 0 {
            d.pointee = UInt8(ascii: "-")
            d += 1
        }
        var magnitude = value.magnitude
        var digits = 0
        var probe = magnitude
        repeat { digits += 1; probe /= 10 } while probe > 0
        var p = d + digits
        let end = p
        repeat {
            p -= 1
            p.pointee = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        return end
    }

    // MARK: The same writers, appending to arrays (for code off the hot path).

    /// Appends `bytes`, which must be UTF-8, as a quoted JSON string.
    public static func appendString(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) throws(Error) {
        let written: Bool = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxStringLength(bytes.count)) { buffer in
            guard let end = writeString(bytes, to: buffer.baseAddress!) else { return false }
            out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: end - buffer.baseAddress!))
            return true
        }
        if !written { throw .invalidUTF8 }
    }

    public static func appendString(_ string: String, to out: inout [UInt8]) throws(Error) {
        var copy = string
        let valid = copy.withUTF8 { buffer in (try? appendString(buffer, to: &out)) != nil }
        if !valid { throw .invalidUTF8 }
    }

    /// Appends a decimal integer.
    public static func appendInteger(_ value: Int, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxIntegerLength) { buffer in
            let end = writeInteger(value, to: buffer.baseAddress!)
            out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: end - buffer.baseAddress!))
        }
    }
}
