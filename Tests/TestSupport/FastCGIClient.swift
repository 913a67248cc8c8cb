import Glibc

/// Just enough of the FastCGI protocol (spec §3–§5) to speak to the responder
/// without nginx in between (to hold a request half-sent, or to send a
/// malformed one), and to build records for the parser's unit tests.
public enum FastCGIClient {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public static let beginRequest: UInt8 = 1, abortRequest: UInt8 = 2, endRequest: UInt8 = 3, params: UInt8 = 4,
                      stdin: UInt8 = 5, stdout: UInt8 = 6, getValues: UInt8 = 9, getValuesResult: UInt8 = 10, unknownType: UInt8 = 11

    /// One record as read: type, request id and content (padding dropped).
    public struct Record: Equatable, Sendable {
        public let type: UInt8
        public let id: UInt16
        public let content: [UInt8]

        public init(type: UInt8, id: UInt16, content: [UInt8]) {
            self.type = type
            self.id = id
            self.content = content
        }

        /// The name-value pairs of a GET_VALUES_RESULT (or PARAMS) record, in order.
        public var pairs: [(String, String)] { FastCGIClient.decodeParams(content) }
    }

    /// Reads one whole record.
    public static func readRecord(_ fd: Int32) throws -> Record {
        let header = try readExactly(fd, 8)
        let length = Int(header[4]) << 8 | Int(header[5])
        let content = try readExactly(fd, length + Int(header[6]))
        return Record(type: header[1], id: UInt16(header[2]) << 8 | UInt16(header[3]), content: Array(content.prefix(length)))
    }

    /// Name-value pairs (spec §3.4), as the plainest reading of the format.
    public static func decodeParams(_ bytes: [UInt8]) -> [(String, String)] {
        var i = 0
        func length() -> Int? {
            guard i < bytes.count else { return nil }
            if bytes[i] < 0x80 { i += 1; return Int(bytes[i - 1]) }
            guard i + 4 <= bytes.count else { return nil }
            defer { i += 4 }
            return Int(bytes[i] & 0x7F) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
        }
        var pairs: [(String, String)] = []
        while let name = length(), let value = length(), i + name + value <= bytes.count {
            pairs.append((String(decoding: bytes[i..<(i + name)], as: UTF8.self),
                          String(decoding: bytes[(i + name)..<(i + name + value)], as: UTF8.self)))
            i += name + value
        }
        return pairs
    }

    public static func record(_ type: UInt8, id: UInt16 = 1, _ content: [UInt8]) -> [UInt8] {
        let length = UInt16(content.count)
        return [1, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(length >> 8), UInt8(length & 0xFF), 0, 0] + content
    }

    public static func begin(id: UInt16 = 1, keepConnection: Bool = false) -> [UInt8] {
        record(beginRequest, id: id, [0, 1, keepConnection ? 1 : 0, 0, 0, 0, 0, 0]) // role RESPONDER
    }

    public static func encodeParams(_ pairs: [(String, String)]) -> [UInt8] {
        encodeParams(bytes: pairs.map { (Array($0.0.utf8), Array($0.1.utf8)) })
    }

    /// Pairs of any bytes (a NUL, invalid UTF-8), with the one- or four-byte lengths of §3.4.
    public static func encodeParams(bytes pairs: [([UInt8], [UInt8])]) -> [UInt8] {
        func length(_ n: Int) -> [UInt8] {
            n < 128 ? [UInt8(n)] : [UInt8(0x80 | (n >> 24)), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        }
        var out: [UInt8] = []
        for (name, value) in pairs {
            out += length(name.count) + length(value.count) + name + value
        }
        return out
    }

    /// The whole request as bytes: BEGIN_REQUEST, PARAMS, empty PARAMS, empty STDIN.
    public static func request(_ pairs: [(String, String)]) -> [UInt8] {
        begin() + record(params, encodeParams(pairs)) + record(params, []) + record(stdin, [])
    }

    /// Reads records until END_REQUEST and returns the STDOUT bytes.
    public static func readResponse(_ fd: Int32) throws -> [UInt8] {
        var stdoutBytes: [UInt8] = []
        while true {
            let header = try readExactly(fd, 8)
            let length = Int(header[4]) << 8 | Int(header[5])
            let content = try readExactly(fd, length + Int(header[6]))
            switch header[1] {
            case stdout: stdoutBytes += content.prefix(length)
            case endRequest: return stdoutBytes
            default: continue
            }
        }
    }

    public static func readExactly(_ fd: Int32, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out[got...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "FastCGI connection ended after \(got) of \(count) bytes") }
            got += n
        }
        return out
    }
}
