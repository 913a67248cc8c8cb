#if canImport(Glibc)
import Glibc
#endif

/// Just enough of the FastCGI protocol (spec §3–§5) to speak to the responder
/// without nginx in between (to hold a request half-sent, or to send a
/// malformed one), and to build records for the parser's unit tests.
public enum FastCGIClient {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public static let beginRequest: UInt8 = 1, endRequest: UInt8 = 3, params: UInt8 = 4, stdin: UInt8 = 5, stdout: UInt8 = 6

    public static func record(_ type: UInt8, id: UInt16 = 1, _ content: [UInt8]) -> [UInt8] {
        let length = UInt16(content.count)
        return [1, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(length >> 8), UInt8(length & 0xFF), 0, 0] + content
    }

    public static func begin(keepConnection: Bool = false) -> [UInt8] {
        record(beginRequest, [0, 1, keepConnection ? 1 : 0, 0, 0, 0, 0, 0]) // role RESPONDER
    }

    public static func encodeParams(_ pairs: [(String, String)]) -> [UInt8] {
        func length(_ n: Int) -> [UInt8] {
            n < 128 ? [UInt8(n)] : [UInt8(0x80 | (n >> 24)), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        }
        var out: [UInt8] = []
        for (name, value) in pairs {
            out += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
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
