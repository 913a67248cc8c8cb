import FastCGIServer
import MagicBellJWT

/// One request as the app acts on it, parsed and checked once by
/// `MagicBellResponder.handle`: what it is for (the route the location
/// declared, with the identity that route needs), the method, nginx's
/// request id, and the params for what only one endpoint reads (the admin
/// route's query, body and origin headers). Endpoints take this value and
/// never look at the route, path, method or identity params again.
struct MagicBellRequest<Params: RequestParameters & RequestBodyReader> {
    enum Action {
        /// A token for `user`.
        case token(user: UserIdentity)
        /// An admin call: the path after `/magicbell-admin/`, and who the
        /// location says is acting (for the audit line), if it says. A
        /// refused actor is kept as the error, so that the refusal is audited too.
        case admin(path: [String], actor: Result<UserIdentity?, EndpointError>)
        case metrics
        case health
    }

    let action: Action
    let method: HTTPMethod
    let params: Params

    /// Checks what `route` needs: the token route takes GET and POST (405
    /// otherwise) and requires an identity (401 without); the admin route
    /// takes an identity if set; metrics none; health GET and HEAD (405
    /// otherwise), and never reads an identity param, so none can refuse it.
    init(_ params: Params, route: Route, method: HTTPMethod) throws(EndpointError) {
        switch route {
        case .token:
            guard method == .get || method == .post else { throw .methodNotAllowed }
            guard let user = try Identity.of(params) else { throw .unauthenticated }
            action = .token(user: user)
        case .admin(let path):
            action = .admin(path: path, actor: Result { () throws(EndpointError) in try Identity.of(params) })
        case .metrics:
            action = .metrics
        case .health:
            guard method == .get || method == .head else { throw .methodNotAllowed(["GET", "HEAD"]) }
            action = .health
        }
        self.method = method
        self.params = params
    }

    /// nginx's `$request_id`, for logs (`-` when the location sets none).
    var requestID: String { params.string("REQUEST_ID") ?? "-" }
}

/// A request method, read once. Methods are case-sensitive (RFC 9110 §9.1):
/// `get` is not `GET`.
enum HTTPMethod: Equatable {
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
