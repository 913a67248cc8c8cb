/// Where requests go: a scheme, a host and a port.
public struct HTTPEndpoint: Sendable, Equatable {
    public let secure: Bool
    /// A name, or an IP literal (IPv6 without brackets).
    public let host: String
    public let port: Int

    public init(secure: Bool, host: String, port: Int? = nil) {
        self.secure = secure
        self.host = host
        self.port = port ?? (secure ? 443 : 80)
    }

    /// The Host field (RFC 9110 §7.2): the port only when it is not the scheme's.
    var authority: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }
}

/// A request to send: the target in origin form (`/path?query`, already
/// percent-encoded), header fields, and a body.
public struct HTTPRequestMessage: Sendable {
    public var method: String
    public var target: String
    public var fields: [HTTPField]
    public var body: [UInt8]?

    public init(method: String, target: String, fields: [HTTPField] = [], body: [UInt8]? = nil) {
        self.method = method
        self.target = target
        self.fields = fields
        self.body = body
    }
}

/// An HTTP/1.1 client that makes one exchange per connection: connect,
/// send, read the whole answer, close. Nothing is reused, so nothing is ever
/// re-sent (a reused connection that drops tempts a client to send a
/// request twice, and a create must be sent once). Redirects are answers,
/// never followed. Every exchange ends by its timeout, the name lookup
/// included; a cancellation ends it at once until the request is sent, and
/// is ignored after (the request may have taken effect).
///
/// Plain HTTP, or HTTPS with OpenSSL's libssl. No proxy, no compression, no
/// cookies: what the MagicBell client needs and nothing else.
public final class OneShotClient: Sendable {
    private let tls: TLSContext
    static let readSize = 16 * 1024
    static let ownFields = ["host", "content-length", "transfer-encoding", "connection"]

    /// `caFile`: trust only the certificates in this PEM file, instead of
    /// the system's store.
    public init(caFile: String? = nil) {
        tls = TLSContext(caFile: caFile)
    }

    public func exchange(_ request: HTTPRequestMessage, with endpoint: HTTPEndpoint, timeout: Double,
                         bodyLimit: Int, cancellation: Cancellation? = nil) throws(ExchangeFailure) -> HTTPResponseMessage {
        let bytes = try Self.serialize(request, for: endpoint)
        if cancellation?.isCancelled == true { throw .cancelled }
        let deadline = Deadline(seconds: timeout)
        let addresses = try Resolver.addresses(of: endpoint.host, port: endpoint.port, until: deadline, cancellation: cancellation)
        let connection = try TCPConnection.connect(to: addresses, until: deadline, cancellation: cancellation)
        if endpoint.secure {
            var session = try TLSSession(over: connection, host: endpoint.host, context: tls, deadline: deadline)
            return try Self.exchange(bytes, over: &session, connection: connection, until: deadline, bodyLimit: bodyLimit)
        }
        var plain = connection
        return try Self.exchange(bytes, over: &plain, connection: connection, until: deadline, bodyLimit: bodyLimit)
    }

    private static func exchange(_ bytes: [UInt8], over stream: inout some ByteStream, connection: TCPConnection,
                                 until deadline: Deadline, bodyLimit: Int) throws(ExchangeFailure) -> HTTPResponseMessage {
        try stream.write(bytes, until: deadline)
        // Sent: the server may act on it (a create makes a token that only
        // this answer names), so the answer is waited for, by the deadline,
        // whatever a cancellation says from here on.
        connection.cancellation = nil
        var parser = ResponseParser(bodyLimit: bodyLimit)
        var buffer = [UInt8](repeating: 0, count: readSize)
        while true {
            let count = try stream.read(into: &buffer, until: deadline)
            if count == 0 {
                try parser.finish()
            } else {
                try parser.feed(buffer[0..<count])
            }
            if let response = parser.response { return response }
        }
    }

    /// The request's bytes (RFC 9112 §3, §6.2). Every field is this
    /// program's own, but a configured value (a token) could hold a CR or LF:
    /// that is refused, never sent as a second field.
    static func serialize(_ request: HTTPRequestMessage, for endpoint: HTTPEndpoint) throws(ExchangeFailure) -> [UInt8] {
        let isToken: (UInt8) -> Bool = { $0 > 0x20 && $0 < 0x7F }
        let isValue: (UInt8) -> Bool = { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
        guard !request.method.isEmpty, request.method.utf8.allSatisfy(isToken),
              request.target.first == "/", request.target.utf8.allSatisfy(isToken),
              endpoint.host.utf8.allSatisfy(isToken),
              request.fields.allSatisfy({ !$0.name.isEmpty && $0.name.utf8.allSatisfy(isToken) && $0.value.utf8.allSatisfy(isValue) })
        else { throw .invalidRequest("a request line or header field holds a character HTTP does not allow") }
        // The framing fields are this function's to write, once each.
        guard !request.fields.contains(where: { field in Self.ownFields.contains { field.isNamed($0) } }) else {
            throw .invalidRequest("Host, Content-Length, Transfer-Encoding and Connection are set by the client")
        }
        var head = "\(request.method) \(request.target) HTTP/1.1\r\nHost: \(endpoint.authority)\r\n"
        for field in request.fields { head += "\(field.name): \(field.value)\r\n" }
        if let body = request.body {
            head += "Content-Length: \(body.count)\r\n"
        } else if request.method == "POST" || request.method == "PUT" {
            head += "Content-Length: 0\r\n"
        }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + (request.body ?? [])
    }
}
