import FastCGIServer
import MagicBellAPI
import MagicBellJWT

/// Every error code the responder answers with; metrics and the audit
/// line use them as they are.
public enum ErrorCode: String, CaseIterable, Sendable {
    case unauthenticated, invalidIdentity = "invalid_identity", identityTooLong = "identity_too_long"
    case methodNotAllowed = "method_not_allowed", notFound = "not_found", invalidPath = "invalid_path"
    case invalidID = "invalid_id", invalidQuery = "invalid_query", invalidJSON = "invalid_json", invalidBody = "invalid_body"
    case incompleteBody = "incomplete_body", bodyTooLarge = "body_too_large", unsupportedMediaType = "unsupported_media_type"
    case crossOrigin = "cross_origin", adminNotConfigured = "admin_not_configured", adminBusy = "admin_busy", mintBusy = "mint_busy"
    case upstreamError = "upstream_error", upstreamUnreachable = "upstream_unreachable"
    case upstreamInvalid = "upstream_invalid", upstreamTimeout = "upstream_timeout"
    case misconfigured, notReady = "not_ready"

    /// The code's position in `allCases`, for tables indexed by code.
    var slot: Int { Self.slots[self]! }
    private static let slots = Dictionary(uniqueKeysWithValues: allCases.enumerated().map { ($1, $0) })

    /// MagicBell failed, not the request.
    public var isUpstream: Bool {
        switch self {
        case .upstreamError, .upstreamUnreachable, .upstreamInvalid, .upstreamTimeout: return true
        default: return false
        }
    }
}

/// Every error the responder answers with: a status and the body
/// `{"error": {"code": "...", "message": "..."}}`. (Not MagicBellAPIError,
/// which is what a call to MagicBell throws; `init(upstream:)` maps one to this.)
public struct EndpointError: Error, Equatable {
    public let status: Int
    public let code: ErrorCode
    public let message: String
    /// For 405: the methods the path accepts, sent as `Allow`.
    public let allow: String?
    /// MagicBell's status, for `upstream_error`: written into the body as
    /// `upstream_status`.
    public let upstreamStatus: Int?
    /// MagicBell's `Retry-After` (already checked), passed on as is.
    public let retryAfter: String?

    public init(status: Int, code: ErrorCode, message: String, allow: String? = nil,
                upstreamStatus: Int? = nil, retryAfter: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.allow = allow
        self.upstreamStatus = upstreamStatus
        self.retryAfter = retryAfter
    }

    public static let notFound = EndpointError(
        status: 404, code: .notFound, message: "No such endpoint.")
    /// The raw request target and the path the server matched disagree (see `Route`).
    public static func invalidPath(_ why: String) -> EndpointError {
        EndpointError(status: 400, code: .invalidPath, message: "The request path is ambiguous: \(why).")
    }
    public static let methodNotAllowed = EndpointError(
        status: 405, code: .methodNotAllowed, message: "This endpoint accepts GET and POST.", allow: "GET, POST")

    public static func methodNotAllowed(_ allowed: [String]) -> EndpointError {
        let list = allowed.joined(separator: ", ")
        return EndpointError(status: 405, code: .methodNotAllowed, message: "This path accepts \(list).", allow: list)
    }

    // The admin route.
    public static let crossOrigin = EndpointError(
        status: 403, code: .crossOrigin, message: "Cross-site requests to the admin route are refused.")
    public static let adminNotConfigured = EndpointError(
        status: 503, code: .adminNotConfigured, message: "The admin route needs MAGICBELL_PROJECT_TOKEN.")
    public static let mintBusy = EndpointError(
        status: 503, code: .mintBusy, message: "Too many tokens waiting on MagicBell; retry shortly.")
    public static let adminBusy = EndpointError(
        status: 503, code: .adminBusy, message: "Too many admin calls in flight; retry shortly.")
    public static let unsupportedMediaType = EndpointError(
        status: 415, code: .unsupportedMediaType, message: "The body must be sent as Content-Type: application/json.")
    public static func bodyTooLarge(_ limit: Int) -> EndpointError {
        EndpointError(status: 413, code: .bodyTooLarge, message: "The body is larger than \(limit) bytes.")
    }
    public static func invalid(_ code: ErrorCode, _ message: String) -> EndpointError {
        EndpointError(status: 400, code: code, message: message)
    }

    // Calls to MagicBell.
    public static func upstreamUnreachable(_ why: String) -> EndpointError {
        EndpointError(status: 502, code: .upstreamUnreachable, message: "MagicBell could not be reached: \(why).")
    }
    public static func upstreamInvalid(_ why: String) -> EndpointError {
        EndpointError(status: 502, code: .upstreamInvalid, message: "MagicBell's answer was not valid: \(why).")
    }
    public static func upstreamTimeout(_ seconds: Double) -> EndpointError {
        EndpointError(status: 504, code: .upstreamTimeout, message: "MagicBell did not answer within \(seconds) s.")
    }

    /// A failed call to MagicBell: 504 for a timeout, 502 for the rest.
    /// (The admin route forwards an `.http` answer itself.)
    init(upstream error: MagicBellAPIError) {
        switch error {
        case .timeout(let seconds): self = .upstreamTimeout(seconds)
        case .unreachable(let why): self = .upstreamUnreachable(why.description)
        case .invalidBaseURL: self = .upstreamUnreachable("the request URL could not be made from MAGICBELL_API_URL")
        case .invalidResponse(let why): self = .upstreamInvalid(why.description)
        case .cancelled: self = .upstreamUnreachable("the call was cancelled")
        case .undecodable(let status, _): self = .upstreamInvalid("not the documented answer (status \(status))")
        case .http(let status, _, let retryAfter):
            // The token route's answer to a browser: never MagicBell's 401 (to the
            // browser helper that means its own login); MagicBell being busy (429,
            // 503) is a 503 with MagicBell's Retry-After, which the helper retries.
            let busy = status == 429 || status == 503
            self = EndpointError(status: busy ? 503 : 502, code: .upstreamError,
                                 message: "MagicBell refused the call (status \(status)).",
                                 upstreamStatus: status, retryAfter: busy ? RetryAfter.checked(retryAfter) : nil)
        }
    }
    /// CGI mode with an invalid configuration (the detail is in the server's error log).
    public static let misconfigured = EndpointError(
        status: 500, code: .misconfigured, message: "The token service is not configured; see the web server's error log.")

    /// The health route while the configuration cannot mint (CGI mode, where
    /// it is loaded for each request).
    public static let notReady = EndpointError(
        status: 503, code: .notReady, message: "The token service cannot mint: its configuration is invalid; see the web server's error log.")

    public static let unauthenticated = EndpointError(
        status: 401, code: .unauthenticated,
        message: "No signed-in user: the server passed no user identity with this request.")

    public static func identityTooLong(_ param: String) -> EndpointError {
        EndpointError(status: 400, code: .identityTooLong,
                 message: "\(param) is longer than \(Identity.maxBytes) bytes.")
    }

    public static func invalidIdentity(_ param: String) -> EndpointError {
        EndpointError(status: 400, code: .invalidIdentity, message: "\(param) is not valid UTF-8.")
    }

    /// MagicBell's refusal with a body that is not JSON (an empty 401, a
    /// proxy's HTML page): its status, kept, with what it means in our shape.
    static func upstreamRefused(status: Int, retryAfter: String?, as answered: Int? = nil) -> EndpointError {
        EndpointError(status: answered ?? status, code: .upstreamError,
                      message: answered == nil ? "MagicBell answered \(status) without a JSON body." : "MagicBell answered \(status).",
                      upstreamStatus: status, retryAfter: RetryAfter.passedOn(retryAfter, status: status))
    }

    /// Writes this error into `response`, replacing any body already there.
    public func write(to response: inout HTTPResponse) {
        response.setStatus(status)
        if let allow { response.addHeader("Allow", string: allow) }
        if let retryAfter { response.addHeader("Retry-After", string: retryAfter) }
        response.addHeader("Content-Type", "application/json")
        Self.addNoStoreHeaders(to: &response)
        response.body.removeAll(keepingCapacity: true)
        response.body.append(contentsOf: #"{"error":{"code":"#.utf8)
        // Codes and messages are our own text; escaping still keeps the JSON
        // valid if a parameter name with odd bytes ever ends up in one.
        try? ClaimsJSON.appendString(code.rawValue, to: &response.body)
        response.body.append(contentsOf: #","message":"#.utf8)
        try? ClaimsJSON.appendString(message, to: &response.body)
        if let upstreamStatus {
            response.body.append(contentsOf: #","upstream_status":"#.utf8)
            ClaimsJSON.appendInteger(upstreamStatus, to: &response.body)
        }
        response.body.append(contentsOf: "}}".utf8)
    }

    /// Tokens and errors about them must never be cached or sniffed.
    static func addNoStoreHeaders(to response: inout HTTPResponse) {
        response.addHeader("Cache-Control", "no-store")
        response.addHeader("Pragma", "no-cache")
        response.addHeader("X-Content-Type-Options", "nosniff")
    }
}

/// MagicBell's `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an
/// HTTP-date), checked before it is passed on: a hostile value must not
/// become a header of ours.
enum RetryAfter {
    /// The value, if it is well-formed: 1 to 10 digits, or an IMF-fixdate's
    /// characters (letters, digits, space, comma, colon) in at most 40 bytes.
    static func checked(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 40 else { return nil }
        let digits = value.utf8.allSatisfy { (0x30...0x39).contains($0) }
        if digits { return value.utf8.count <= 10 ? value : nil }
        let date = value.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == 0x20 || byte == 0x2C || byte == 0x3A
        }
        return date ? value : nil
    }

    /// Passed on for the two statuses that carry it (429, 503), else nil.
    static func passedOn(_ value: String?, status: Int) -> String? {
        status == 429 || status == 503 ? checked(value) : nil
    }
}
