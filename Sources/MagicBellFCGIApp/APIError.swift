import FastCGIServer
import MagicBellJWT

/// Every error the responder answers with: a status and the body
/// `{"error": {"code": "...", "message": "..."}}`.
public struct APIError: Error, Equatable {
    public let status: Int
    public let code: String
    public let message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public static let notFound = APIError(
        status: 404, code: "not_found", message: "No such endpoint.")
    public static let methodNotAllowed = APIError(
        status: 405, code: "method_not_allowed", message: "This endpoint accepts GET and POST.")
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
