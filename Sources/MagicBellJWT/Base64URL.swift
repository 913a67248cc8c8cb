/// base64url without padding (RFC 4648 §5, as JWS requires).
public enum Base64URL {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The alphabet in memory that is never freed, so the hot path reads it
    /// without reference counting or bounds checks.
    @usableFromInline
    nonisolated(unsafe) static let table: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        table.initialize(from: alphabet, count: 64)
        return UnsafePointer(table)
    }()

    /// Standard base64's alphabet (RFC 4648 §4), for MagicBell's HMAC user
    /// key; same write, then `=` padding.
    @usableFromInline
    nonisolated(unsafe) static let standardTable: UnsafePointer<UInt8> = {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        table.initialize(from: alphabet, count: 64)
        return UnsafePointer(table)
    }()

    /// Standard base64 with padding (RFC 4648 §4) of `count` bytes at
    /// `source`, to `destination` (room for `4 * ((count + 2) / 3)` bytes);
    /// returns the end.
    @inlinable
    package static func writeStandard(_ source: UnsafePointer<UInt8>, count: Int,
                                      to destination: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var end = write(source, count: count, to: destination, table: standardTable)
        while (end - destination) % 4 != 0 {
            end.pointee = UInt8(ascii: "=")
            end += 1
        }
        return end
    }

    /// The length of the encoding of `count` bytes.
    @inlinable
    package static func encodedLength(_ count: Int) -> Int { (count * 4 + 2) / 3 }

    /// Writes the encoding of `count` bytes at `source` to `destination`,
    /// which must have room for `encodedLength(count)` bytes; returns the end.
    @inlinable
    package static func write(_ source: UnsafePointer<UInt8>, count: Int,
                             to destination: UnsafeMutablePointer<UInt8>,
                             table: UnsafePointer<UInt8> = Base64URL.table) -> UnsafeMutablePointer<UInt8> {
        var s = source, d = destination
        let end = source + count - count % 3
        while s < end {
            let v = UInt32(s[0]) << 16 | UInt32(s[1]) << 8 | UInt32(s[2])
            d[0] = table[Int(v >> 18)]
            d[1] = table[Int(v >> 12 & 0x3F)]
            d[2] = table[Int(v >> 6 & 0x3F)]
            d[3] = table[Int(v & 0x3F)]
            s += 3
            d += 4
        }
        switch count % 3 {
        case 1:
            let v = UInt32(s[0]) << 16
            d[0] = table[Int(v >> 18)]
            d[1] = table[Int(v >> 12 & 0x3F)]
            d += 2
        case 2:
            let v = UInt32(s[0]) << 16 | UInt32(s[1]) << 8
            d[0] = table[Int(v >> 18)]
            d[1] = table[Int(v >> 12 & 0x3F)]
            d[2] = table[Int(v >> 6 & 0x3F)]
            d += 3
        default:
            break
        }
        return d
    }

    /// Appends the encoding of `bytes` to `out`.
    public static func encode(_ bytes: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), !bytes.isEmpty else { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: encodedLength(bytes.count)) { buffer in
            let end = write(base, count: bytes.count, to: buffer.baseAddress!)
            out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: end - buffer.baseAddress!))
        }
    }

    public static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        Array(bytes).withUnsafeBytes { encode($0, appendingTo: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    private static let decodeTable: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = Int8(index) }
        return table
    }()

    /// Strict decoding: only the base64url alphabet, no padding, no line
    /// breaks, and the unused low bits of the last character must be zero
    /// (so every byte string has exactly one accepted encoding).
    public static func decode<Bytes: Collection>(_ text: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
        let chars = Array(text)
        if chars.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            let v = decodeTable[Int(c)]
            if v < 0 { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        if acc != 0 { return nil }
        return out
    }
}
