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

/// Why an exchange produced no answer: what happened, as a value to match
/// on; libcurl's own words, where it had any, ride along as a
/// `CurlDiagnostic` for the log line. `description` says it in English.
public enum ExchangeFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The whole exchange (name lookup included) did not end within the timeout.
    case timedOut
    /// `Cancellation.cancel()` was called.
    case cancelled
    /// No connection.
    case unreachable(Unreachable)
    /// The TLS handshake failed: an untrusted or mismatched certificate, or no common protocol.
    case tls(CurlDiagnostic)
    /// The connection ended before the answer was complete.
    case dropped(Dropped)
    /// The bytes are not an HTTP answer this client takes.
    case malformed(Malformed)
    /// The body is larger than the limit.
    case tooLarge(limit: Int)
    /// Nothing was sent: the request cannot be sent as given, or libcurl
    /// cannot be loaded or used.
    case invalidRequest(InvalidRequest)

    public enum Unreachable: Equatable, Sendable {
        case hostNotFound, proxyNotFound, refused
        case other(CurlDiagnostic)
    }

    public enum Dropped: Equatable, Sendable {
        /// Closed before any answer.
        case beforeAnswer
        /// An HTTP/1 body framed by the close, over TLS: it could be cut short unseen.
        case closeDelimitedOverTLS
        case other(CurlDiagnostic)
    }

    public enum Malformed: Equatable, Sendable {
        case headerTooLarge(limit: Int)
        case notHTTP(CurlDiagnostic)
    }

    public enum InvalidRequest: Equatable, Sendable {
        /// A CR, LF or other character HTTP does not allow in the request
        /// line, a field or the host.
        case forbiddenCharacter
        /// Host, Content-Length, Transfer-Encoding or Connection, which libcurl writes.
        case reservedField
        /// libcurl could not be loaded, or refused a handle or an option.
        case libcurl(CurlDiagnostic)
    }

    public var description: String {
        switch self {
        case .timedOut: "no complete answer within the timeout"
        case .cancelled: "cancelled"
        case .unreachable(.hostNotFound): "host not found"
        case .unreachable(.proxyNotFound): "proxy host not found"
        case .unreachable(.refused): "connection refused"
        case .unreachable(.other(let why)): why.description
        case .tls(let why): "TLS failed: \(why)"
        case .dropped(.beforeAnswer): "the connection closed before an answer"
        case .dropped(.closeDelimitedOverTLS): "the answer's body ran to the close, which over TLS can be cut short unseen"
        case .dropped(.other(let why)): why.description
        case .malformed(.headerTooLarge(let limit)): "the answer's header is larger than \(limit) bytes"
        case .malformed(.notHTTP(let why)): "not an HTTP answer: \(why)"
        case .tooLarge(let limit): "the answer is larger than \(limit) bytes"
        case .invalidRequest(.forbiddenCharacter): "a request line or header field holds a character HTTP does not allow"
        case .invalidRequest(.reservedField): "Host, Content-Length, Transfer-Encoding and Connection are set by the client"
        case .invalidRequest(.libcurl(let why)): why.description
        }
    }
}

/// libcurl's own words about a failure (its error buffer, or
/// `curl_easy_strerror`), kept for logs; code never matches on them.
public struct CurlDiagnostic: Equatable, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}
