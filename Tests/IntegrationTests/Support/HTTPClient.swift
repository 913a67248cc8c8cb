import Glibc
import Foundation

/// A raw HTTP/1.1 client: the tests need exact control over methods and
/// headers (odd methods, spoofed headers), which URLSession smooths over.
struct HTTPResponse {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] }
    var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum HTTP {
    static func request(port: UInt16, _ method: String = "GET", _ path: String,
                        headers: [(String, String)] = [], body: [UInt8] = []) throws -> HTTPResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return try exchange(port: port, Array(head.utf8) + body)
    }

    /// Sends `raw` as it is (any bytes: invalid UTF-8, NULs, odd framing) and
    /// reads the answer; the connection is closed by the server (send
    /// `Connection: close`).
    static func exchange(port: UInt16, _ raw: [UInt8]) throws -> HTTPResponse {
        let fd = try Sockets.connectTCP(port: port)
        defer { close(fd) }
        try Sockets.writeAll(fd, raw)
        return try parse(try Sockets.readToEnd(fd))
    }

    static func basic(_ user: String, _ password: String) -> (String, String) {
        ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
    }

    static func parse(_ raw: [UInt8]) throws -> HTTPResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let split = raw.indices.first(where: { raw[$0...].starts(with: separator) }) else {
            throw Sockets.Failure(description: "no HTTP head in \(raw.count) bytes")
        }
        let lines = String(decoding: raw[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw Sockets.Failure(description: "bad status line \(lines[0])")
        }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(raw[(split + 4)...])
        if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased() == "chunked" }) {
            body = dechunk(body)
        }
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    private static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < data.count {
            guard let lineEnd = data[i...].firstIndex(of: 13) else { break }
            let size = Int(String(decoding: data[i..<lineEnd], as: UTF8.self), radix: 16) ?? 0
            if size == 0 { break }
            out.append(contentsOf: data[(lineEnd + 2)..<(lineEnd + 2 + size)])
            i = lineEnd + 2 + size + 2
        }
        return out
    }
}
