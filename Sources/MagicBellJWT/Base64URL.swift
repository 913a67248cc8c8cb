/// base64url without padding (RFC 4648 §5, as JWS requires).
public enum Base64URL {
    @usableFromInline
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Appends the encoding of `bytes` to `out`.
    @inlinable
    public static func encode(_ bytes: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) {
        let n = bytes.count
        out.reserveCapacity(out.count + (n * 4 + 2) / 3)
        alphabet.withUnsafeBufferPointer { table in
            var i = 0
            while i + 3 <= n {
                let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                out.append(table[Int(v >> 18)])
                out.append(table[Int(v >> 12 & 0x3F)])
                out.append(table[Int(v >> 6 & 0x3F)])
                out.append(table[Int(v & 0x3F)])
                i += 3
            }
            switch n - i {
            case 1:
                let v = UInt32(bytes[i]) << 16
                out.append(table[Int(v >> 18)])
                out.append(table[Int(v >> 12 & 0x3F)])
            case 2:
                let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
                out.append(table[Int(v >> 18)])
                out.append(table[Int(v >> 12 & 0x3F)])
                out.append(table[Int(v >> 6 & 0x3F)])
            default:
                break
            }
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
