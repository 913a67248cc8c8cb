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

/// One header field as received: the name as sent, the value without OWS.
public struct HTTPField: Sendable, Equatable {
    public let name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Field names are case-insensitive (RFC 9110 §5.1); `lowercase` is.
    func isNamed(_ lowercase: String) -> Bool {
        name.utf8.count == lowercase.utf8.count && name.lowercased() == lowercase
    }
}

extension [HTTPField] {
    /// The value of the first field of that name (any case), if any.
    public func value(named name: String) -> String? {
        let lowercase = name.lowercased()
        return first { $0.isNamed(lowercase) }?.value
    }
}

/// A complete answer: its status, its fields, and its body after the
/// transfer coding is removed.
public struct HTTPResponseMessage: Sendable, Equatable {
    public let status: Int
    public let fields: [HTTPField]
    public let body: [UInt8]

    public init(status: Int, fields: [HTTPField], body: [UInt8]) {
        self.status = status
        self.fields = fields
        self.body = body
    }

    /// The first field of that name (any case), if any.
    public func field(_ name: String) -> String? { fields.value(named: name) }
}

/// Why an exchange produced no answer.
public enum ExchangeFailure: Error, Equatable, Sendable {
    /// The whole exchange (name lookup included) did not end within the timeout.
    case timedOut
    /// `Cancellation.cancel()` was called.
    case cancelled
    /// No connection: the name did not resolve, or every address refused.
    case unreachable(String)
    /// The TLS handshake failed: an untrusted or mismatched certificate, or no common protocol.
    case tls(String)
    /// The connection ended before the answer was complete.
    case dropped(String)
    /// The bytes are not an HTTP answer (libcurl could not parse them).
    case malformed(String)
    /// The body is larger than the limit.
    case tooLarge(limit: Int)
    /// The request cannot be sent as given (a control character in a field),
    /// or libcurl cannot be loaded; nothing was sent.
    case invalidRequest(String)
}
