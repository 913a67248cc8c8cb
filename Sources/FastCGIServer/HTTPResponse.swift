/// A response in CGI form (`Status:` line, headers, body) built in reused
/// buffers and sent with one write. `Content-Length` is always added: without
/// it nginx falls back to chunked encoding towards the client.
public struct HTTPResponse {
    public private(set) var status: Int = 200
    /// Header lines, each `Name: value\r\n`.
    private var headerLines: [UInt8] = []
    public var body: [UInt8] = []
    /// An answer to HEAD: the head alone (see `omitBody`).
    public private(set) var omitsBody = false

    public init() {
        headerLines.reserveCapacity(512)
        body.reserveCapacity(1024)
    }

    /// Empties the response, keeping the buffers' capacity.
    public mutating func reset() {
        status = 200
        omitsBody = false
        headerLines.removeAll(keepingCapacity: true)
        body.removeAll(keepingCapacity: true)
    }

    public mutating func setStatus(_ code: Int) { status = code }

    /// Sends the head alone: the answer to a HEAD request, which has no body
    /// (RFC 9110 §9.3.2). No `Content-Length` either: §8.6 allows one only
    /// with the length a GET would have had, and this answer is not a GET's.
    public mutating func omitBody() { omitsBody = true }

    public mutating func addHeader(_ name: StaticString, _ value: StaticString) {
        appendLine(name, UnsafeRawBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
    }

    /// Adds a header with a dynamic value. CR, LF and NUL are dropped, so no
    /// value can start a header or end the head early. (Labelled, so that a
    /// literal value takes the copy-free `StaticString` overload above.)
    public mutating func addHeader(_ name: StaticString, string value: String) {
        let clean = value.utf8.filter { $0 != 0x0D && $0 != 0x0A && $0 != 0 }
        clean.withUnsafeBytes { appendLine(name, $0) }
    }

    /// Adds a header whose value is copied as is if every byte is visible
    /// ASCII (0x21–0x7E) and there are at most `maxBytes`; otherwise adds
    /// nothing. For echoing ids without building a String.
    public mutating func addHeader(_ name: StaticString, visibleASCII value: UnsafeBufferPointer<UInt8>, maxBytes: Int = 128) {
        guard !value.isEmpty, value.count <= maxBytes, value.allSatisfy({ (0x21...0x7E).contains($0) }) else { return }
        appendLine(name, UnsafeRawBufferPointer(value))
    }

    private mutating func appendLine(_ name: StaticString, _ value: UnsafeRawBufferPointer) {
        headerLines.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        headerLines.append(UInt8(ascii: ":"))
        headerLines.append(UInt8(ascii: " "))
        headerLines.append(contentsOf: value)
        headerLines.append(0x0D)
        headerLines.append(0x0A)
    }

    /// Writes the whole response (head and body) into `out`, replacing its contents.
    public func serialize(into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: "Status: ".utf8)
        appendDecimal(status, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: Self.reasonPhrase(status).utf8)
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: headerLines)
        if omitsBody {
            out.append(contentsOf: "\r\n".utf8)
            return
        }
        out.append(contentsOf: "Content-Length: ".utf8)
        appendDecimal(body.count, to: &out)
        out.append(contentsOf: "\r\n\r\n".utf8)
        out.append(contentsOf: body)
    }

    private func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var remaining = value.magnitude
        withUnsafeMutableBytes(of: &digits) { raw in
            var start = raw.count
            repeat {
                start -= 1
                raw[start] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            } while remaining > 0
            out.append(contentsOf: raw[start...])
        }
    }

    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 413: return "Payload Too Large"
        case 415: return "Unsupported Media Type"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}
