import FastCGIServer
import MagicBellAPI
import MagicBellJWT

/// Every error the responder answers with: a status and the body
/// `{"error": {"code": "...", "message": "..."}}`.
public struct APIError: Error, Equatable {
    public let status: Int
    public let code: String
    public let message: String
    /// For 405: the methods the path accepts, sent as `Allow`.
    public let allow: String?

    public init(status: Int, code: String, message: String, allow: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.allow = allow
    }

    public static let notFound = APIError(
        status: 404, code: "not_found", message: "No such endpoint.")
    /// The raw request target and the path the server matched disagree (see `Route`).
    public static func invalidPath(_ why: String) -> APIError {
        APIError(status: 400, code: "invalid_path", message: "The request path is ambiguous: \(why).")
    }
    public static let methodNotAllowed = APIError(
        status: 405, code: "method_not_allowed", message: "This endpoint accepts GET and POST.", allow: "GET, POST")

    public static func methodNotAllowed(_ allowed: [String]) -> APIError {
        let list = allowed.joined(separator: ", ")
        return APIError(status: 405, code: "method_not_allowed", message: "This path accepts \(list).", allow: list)
    }

    // The admin route.
    public static let crossOrigin = APIError(
        status: 403, code: "cross_origin", message: "Cross-site requests to the admin route are refused.")
    public static let adminNotConfigured = APIError(
        status: 503, code: "admin_not_configured", message: "The admin route needs MAGICBELL_PROJECT_TOKEN.")
    public static let mintBusy = APIError(
        status: 503, code: "mint_busy", message: "Too many tokens waiting on MagicBell; retry shortly.")
    public static let adminBusy = APIError(
        status: 503, code: "admin_busy", message: "Too many admin calls in flight; retry shortly.")
    public static let unsupportedMediaType = APIError(
        status: 415, code: "unsupported_media_type", message: "The body must be sent as Content-Type: application/json.")
    public static func bodyTooLarge(_ limit: Int) -> APIError {
        APIError(status: 413, code: "body_too_large", message: "The body is larger than \(limit) bytes.")
    }
    public static func invalid(_ code: String, _ message: String) -> APIError {
        APIError(status: 400, code: code, message: message)
    }

    // Calls to MagicBell.
    public static func upstreamUnreachable(_ why: String) -> APIError {
        APIError(status: 502, code: "upstream_unreachable", message: "MagicBell could not be reached: \(why).")
    }
    public static func upstreamInvalid(_ why: String) -> APIError {
        APIError(status: 502, code: "upstream_invalid", message: "MagicBell's answer was not valid: \(why).")
    }
    public static func upstreamTimeout(_ seconds: Double) -> APIError {
        APIError(status: 504, code: "upstream_timeout", message: "MagicBell did not answer within \(seconds) s.")
    }

    /// A failed call to MagicBell: 504 for a timeout, 502 for the rest.
    init(upstream error: MagicBellAPIError) {
        switch error {
        case .timeout(let seconds): self = .upstreamTimeout(seconds)
        case .unreachable(let why): self = .upstreamUnreachable(why)
        case .invalidResponse(let why): self = .upstreamInvalid(why)
        case .http(let status, _): self = .upstreamInvalid("status \(status)") // send() returns statuses, never throws this
        }
    }
    public static let unauthenticated = APIError(
        status: 401, code: "unauthenticated",
        message: "No signed-in user: the server passed no user identity with this request.")

    public static func identityTooLong(_ param: String) -> APIError {
        APIError(status: 400, code: "identity_too_long",
                 message: "\(param) is longer than \(Identity.maxBytes) bytes.")
    }

    public static func invalidIdentity(_ param: String) -> APIError {
        APIError(status: 400, code: "invalid_identity", message: "\(param) is not valid UTF-8.")
    }

    /// Writes this error into `response`, replacing any body already there.
    public func write(to response: inout HTTPResponse) {
        response.setStatus(status)
        if let allow { response.addHeader("Allow", string: allow) }
        response.addHeader("Content-Type", "application/json")
        Self.addNoStoreHeaders(to: &response)
        response.body.removeAll(keepingCapacity: true)
        response.body.append(contentsOf: #"{"error":{"code":"#.utf8)
        // Codes and messages are our own text; escaping still keeps the JSON
        // valid if a parameter name with odd bytes ever ends up in one.
        try? ClaimsJSON.appendString(code, to: &response.body)
        response.body.append(contentsOf: #","message":"#.utf8)
        try? ClaimsJSON.appendString(message, to: &response.body)
        response.body.append(contentsOf: "}}".utf8)
    }

    /// Tokens and errors about them must never be cached or sniffed.
    static func addNoStoreHeaders(to response: inout HTTPResponse) {
        response.addHeader("Cache-Control", "no-store")
        response.addHeader("Pragma", "no-cache")
        response.addHeader("X-Content-Type-Options", "nosniff")
    }
}
