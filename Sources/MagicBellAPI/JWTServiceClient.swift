import Dispatch
import FoundationEssentials
import CurlHTTP

public enum MagicBellAPIError: Error, Equatable, CustomStringConvertible {
    /// MagicBell answered with a status of 400 or more; the raw body is kept,
    /// and its `Retry-After`, if it sent one (unchecked).
    case http(status: Int, body: [UInt8], retryAfter: String?)
    /// No complete answer within the timeout.
    case timeout(seconds: Double)
    /// No connection, or it broke before the answer was complete (the
    /// exchange's failure says how), or nothing could be sent.
    case unreachable(ExchangeFailure)
    /// `MAGICBELL_API_URL` gives no URL to send to; nothing was sent.
    case invalidBaseURL
    /// An answer that is not what the API documents.
    case invalidResponse(InvalidResponse)
    /// A 2xx whose body is not the operation's model. The call may well
    /// have taken effect (a create), so the bytes are kept.
    case undecodable(status: Int, body: [UInt8])
    /// The caller's task was cancelled (the async surface only).
    case cancelled

    public enum InvalidResponse: Equatable, Sendable, CustomStringConvertible {
        /// A status the API never answers with (a redirect, a 1xx).
        case status(Int)
        /// Bytes the transport would not take as an answer (not HTTP, too large).
        case transport(ExchangeFailure)

        public var description: String {
            switch self {
            case .status(let status): "status \(status)"
            case .transport(let failure): failure.description
            }
        }
    }

    public var description: String {
        switch self {
        case .http(let status, let body, _):
            return "MagicBell answered \(status): \(String(decoding: body.prefix(200), as: UTF8.self))"
        case .timeout(let seconds): return "MagicBell did not answer within \(seconds) s"
        case .unreachable(let why): return "MagicBell is unreachable: \(why)"
        case .invalidBaseURL: return "MagicBell is unreachable: the request URL could not be made from MAGICBELL_API_URL"
        case .invalidResponse(let why): return "MagicBell's answer is invalid: \(why)"
        case .undecodable(let status, _): return "MagicBell's answer (status \(status)) is not the operation's model"
        case .cancelled: return "the call to MagicBell was cancelled"
        }
    }
}

/// A client for MagicBell's JwtService, authenticated with a project token.
///
/// One core (`send`) makes every call over `CurlClient` (libcurl, loaded
/// at the first call): a deadline of `timeout` for all of it (name lookup
/// included), answers capped at `maxResponseBytes`, redirects never
/// followed (the project token must not travel to another host), a create
/// never sent twice (it goes on a fresh connection; other calls reuse
/// kept ones). Two surfaces over it: blocking, for thread-per-request
/// servers such as this one, and async, which also stops the call when its
/// task is cancelled before the request is sent.
public final class JWTServiceClient: Sendable {
    public static let defaultBaseURL = URL(string: "https://api.magicbell.com/v2")!
    public static let defaultTimeout: Double = 10
    public static let maxResponseBytes = 1 << 20

    public let baseURL: URL
    public let timeout: Double
    private let endpoint: HTTPEndpoint?
    /// The base URL's path, without a trailing slash, percent-encoded as given.
    private let basePath: String
    private let fields: [HTTPField]
    private let http: CurlClient

    /// `caFile`: trust only this PEM file's certificates for HTTPS, instead
    /// of the system's store (which SSL_CERT_FILE and SSL_CERT_DIR also
    /// replace). `proxy` and `noProxy`: see `CurlClient.init`.
    public init(projectToken: String, baseURL: URL = JWTServiceClient.defaultBaseURL,
                timeout: Double = JWTServiceClient.defaultTimeout, userAgent: String = "magicbell-fcgi",
                caFile: String? = nil, proxy: String? = nil, noProxy: String? = nil) {
        self.baseURL = baseURL
        self.timeout = timeout
        endpoint = Self.endpoint(of: baseURL)
        var path = baseURL.path(percentEncoded: true)
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path
        fields = [HTTPField(name: "Authorization", value: "Bearer \(projectToken)"),
                  HTTPField(name: "Accept", value: "application/json"),
                  HTTPField(name: "User-Agent", value: userAgent)]
        http = CurlClient(caFile: caFile, proxy: proxy, noProxy: noProxy)
    }

    private static func endpoint(of url: URL) -> HTTPEndpoint? {
        guard let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
              var host = url.host(percentEncoded: false), !host.isEmpty else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return HTTPEndpoint(secure: scheme == "https", host: host, port: url.port)
    }

    // MARK: Typed calls

    /// Sends `call` and waits: the answer's model, or the error.
    public func perform<Answer>(_ call: JwtCall<Answer>) throws(MagicBellAPIError) -> Answered<Answer> {
        try Self.decode(try send(call.request), as: Answer.self)
    }

    /// Sends `call`; cancelling the task stops it (`.cancelled`) until the
    /// request is sent, not after: then MagicBell may have acted on it.
    public func perform<Answer>(_ call: JwtCall<Answer>) async throws(MagicBellAPIError) -> Answered<Answer> {
        try Self.decode(try await send(call.request), as: Answer.self)
    }

    /// A 2xx answer as its model; 4xx and 5xx as `.http` with the raw body;
    /// anything else (a redirect, a body that is not the model) as invalid.
    static func decode<Answer: Decodable>(_ response: HTTPResponseMessage, as type: Answer.Type)
        throws(MagicBellAPIError) -> Answered<Answer> {
        switch response.status {
        case 200..<300:
            do {
                let value = try JSONDecoder().decode(Answer.self, from: Data(response.body))
                return Answered(status: response.status, body: response.body, value: value)
            } catch {
                throw .undecodable(status: response.status, body: response.body)
            }
        case 400..<600:
            throw .http(status: response.status, body: response.body, retryAfter: response.field("Retry-After"))
        default:
            throw .invalidResponse(.status(response.status))
        }
    }

    // MARK: Raw calls

    /// Sends the request and waits for the answer, whatever its status.
    public func send(_ request: APIRequest) throws(MagicBellAPIError) -> HTTPResponseMessage {
        try send(request, cancellation: nil)
    }

    /// Sends the request; cancelling the task cancels the call until the
    /// request is sent (see `Cancellation`).
    public func send(_ request: APIRequest) async throws(MagicBellAPIError) -> HTTPResponseMessage {
        // A create must not reach MagicBell for a caller that has gone.
        guard !Task.isCancelled else { throw .cancelled }
        let cancellation = Cancellation()
        let result: Result<HTTPResponseMessage, MagicBellAPIError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // The exchange blocks its thread until its deadline at most:
                // on Dispatch's pool, never the cooperative one.
                DispatchQueue.global().async { [self] in
                    do throws(MagicBellAPIError) {
                        continuation.resume(returning: .success(try send(request, cancellation: cancellation)))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
        return try result.get()
    }

    private func send(_ request: APIRequest, cancellation: Cancellation?) throws(MagicBellAPIError) -> HTTPResponseMessage {
        guard let endpoint else {
            throw .invalidBaseURL
        }
        var headers = fields
        if request.body != nil { headers.append(HTTPField(name: "Content-Type", value: "application/json")) }
        let message = HTTPRequestMessage(method: request.operation.method, target: target(for: request),
                                         fields: headers, body: request.body)
        do {
            return try http.exchange(message, with: endpoint, timeout: timeout,
                                     bodyLimit: Self.maxResponseBytes, cancellation: cancellation)
        } catch {
            throw Self.error(for: error, timeout: timeout)
        }
    }

    private static func error(for failure: ExchangeFailure, timeout: Double) -> MagicBellAPIError {
        switch failure {
        case .timedOut: .timeout(seconds: timeout)
        case .cancelled: .cancelled
        case .unreachable, .tls, .dropped, .invalidRequest: .unreachable(failure)
        case .malformed, .tooLarge: .invalidResponse(.transport(failure))
        }
    }

    /// The request target (origin form): the base URL's path, the
    /// operation's path with its one parameter encoded as one segment, the query.
    func target(for request: APIRequest) -> String {
        let path = request.operation.path.render(request.pathValue)
        var target = basePath + "/" + path
        if !request.query.isEmpty {
            target += "?" + request.query.map { PercentEncoding.encode($0.name) + "=" + PercentEncoding.encode($0.value) }
                .joined(separator: "&")
        }
        return target
    }

    /// The URL a request goes to; nil only if `baseURL` cannot take the
    /// encoded path (then nothing is sent).
    public func url(for request: APIRequest) -> URL? {
        guard endpoint != nil, let scheme = baseURL.scheme, let authority = baseURL.host(percentEncoded: true) else { return nil }
        let port = baseURL.port.map { ":\($0)" } ?? ""
        return URL(string: "\(scheme)://\(authority)\(port)\(target(for: request))")
    }

    // MARK: The six operations, async, named as in MagicBell's SDKs
    // (a convenience: `perform(JwtService.x.call(...))` reaches any operation).

    public func fetchProjectTokens(_ page: Pagination = Pagination()) async throws(MagicBellAPIError) -> TokenList {
        try await perform(JwtService.fetchProjectTokens.call(page: page)).value
    }

    public func createProjectJwt(_ body: CreateProjectTokenRequest) async throws(MagicBellAPIError) -> CreatedToken {
        try await perform(JwtService.createProjectJwt.call(body: body)).value
    }

    public func discardProjectJwt(tokenID: String) async throws(MagicBellAPIError) -> DiscardedToken {
        try await perform(JwtService.discardProjectJwt.call(pathValue: tokenID)).value
    }

    public func createUserJwt(_ body: CreateUserTokenRequest) async throws(MagicBellAPIError) -> CreatedToken {
        try await perform(JwtService.createUserJwt.call(body: body)).value
    }

    public func discardUserJwt(tokenID: String) async throws(MagicBellAPIError) -> DiscardedToken {
        try await perform(JwtService.discardUserJwt.call(pathValue: tokenID)).value
    }

    public func fetchUserTokens(userID: String, _ page: Pagination = Pagination()) async throws(MagicBellAPIError) -> TokenList {
        try await perform(JwtService.fetchUserTokens.call(pathValue: userID, page: page)).value
    }
}
