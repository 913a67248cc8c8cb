import FastCGIServer

/// One request as the app acts on it, parsed and checked once by
/// `MagicBellResponder.handle`: the route the location declared, the
/// method, and the path that route acts on (the admin route's segments
/// after `/magicbell-admin/`), with the params for what only one handler
/// reads (the identity, the admin route's query, body and origin headers).
/// Handlers take this value and never look at the route, path or method
/// params again.
struct MagicBellRequest<Params: RequestParameters & RequestBodyReader> {
    let params: Params
    let route: Route
    let method: HTTPMethod
    let path: [String]
}

/// What the steps and the handler of one request tell each other: the
/// entry it matched, and for the audit line, what the call acted on and
/// how it went.
struct RequestState {
    /// The matched entry's name (`createUserJwt`, `metrics`, `console`); nil before a match.
    var entry: String?
    var auditsRefusalsOnly = false
    /// The path value, or a create's new token id.
    var target: String?
    /// `ok` or `upstream_error` once MagicBell answered.
    var outcome: String?
}

/// A request method, read once. Methods are case-sensitive (RFC 9110 §9.1):
/// `get` is not `GET`.
enum HTTPMethod: Equatable, Sendable {
    case get, post, delete, head
    case other(String)

    init(_ bytes: UnsafeBufferPointer<UInt8>?) {
        guard let bytes else {
            self = .other("")
            return
        }
        if bytes.equals("GET") {
            self = .get
        } else if bytes.equals("POST") {
            self = .post
        } else if bytes.equals("DELETE") {
            self = .delete
        } else if bytes.equals("HEAD") {
            self = .head
        } else {
            self = .other(String(decoding: bytes.prefix(32), as: UTF8.self))
        }
    }

    /// A method by name, as an operation's description spells it.
    init(_ name: String) {
        var name = name
        self = name.withUTF8 { HTTPMethod($0) }
    }

    /// As logs show it: `-` when the server sent none.
    var logName: String { name.isEmpty ? "-" : name }

    var name: String {
        switch self {
        case .get: return "GET"
        case .post: return "POST"
        case .delete: return "DELETE"
        case .head: return "HEAD"
        case .other(let name): return name
        }
    }
}
