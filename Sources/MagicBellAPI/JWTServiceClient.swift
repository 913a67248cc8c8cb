import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

public enum MagicBellAPIError: Error, Equatable, CustomStringConvertible {
    /// MagicBell answered with a status of 400 or more; the raw body is kept.
    case http(status: Int, body: [UInt8])
    /// No complete answer within the timeout.
    case timeout(seconds: Double)
    /// No connection, or it broke before the answer was complete.
    case unreachable(String)
    /// An answer that is not what the API documents (a redirect, too large).
    case invalidResponse(String)
    /// A 2xx whose body is not the operation's model. The call may well
    /// have taken effect (a create), so the bytes are kept.
    case undecodable(status: Int, body: [UInt8])
    /// The caller's task was cancelled (the async surface only).
    case cancelled

    public var description: String {
        switch self {
        case .http(let status, let body):
            return "MagicBell answered \(status): \(String(decoding: body.prefix(200), as: UTF8.self))"
        case .timeout(let seconds): return "MagicBell did not answer within \(seconds) s"
        case .unreachable(let why): return "MagicBell is unreachable: \(why)"
        case .invalidResponse(let why): return "MagicBell's answer is invalid: \(why)"
        case .undecodable(let status, _): return "MagicBell's answer (status \(status)) is not the operation's model"
        case .cancelled: return "the call to MagicBell was cancelled"
        }
    }
}

/// A client for MagicBell's JwtService, authenticated with a project token.
///
/// One core (`start`) sends every call: a deadline of `timeout` (URLSession's,
/// and a hard stop a little after it that completes the call whatever the
/// transport does), answers capped at `maxResponseBytes`, redirects never
/// followed (the project token must not travel to another host), never a
/// retry (the creates are not idempotent). Two surfaces over it: blocking,
/// for thread-per-request servers such as this one, and async, which also
/// stops the call when its task is cancelled.
public final class JWTServiceClient: Sendable {
    public static let defaultBaseURL = URL(string: "https://api.magicbell.com/v2")!
    public static let defaultTimeout: Double = 10
    public static let maxResponseBytes = 1 << 20
    /// How long after `timeout` the hard stop fires, if URLSession has not
    /// ended the call by then.
    static let hardStopMargin = 0.25

    public let baseURL: URL
    public let timeout: Double
    private let projectToken: String
    private let session: URLSession
    private let tasks: PendingCalls

    public init(projectToken: String, baseURL: URL = JWTServiceClient.defaultBaseURL,
                timeout: Double = JWTServiceClient.defaultTimeout, userAgent: String = "magicbell-fcgi") {
        self.projectToken = projectToken
        self.baseURL = baseURL
        self.timeout = timeout
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.httpAdditionalHeaders = ["User-Agent": userAgent]
        tasks = PendingCalls(limit: Self.maxResponseBytes)
        session = URLSession(configuration: configuration, delegate: tasks, delegateQueue: nil)
    }

    deinit { session.invalidateAndCancel() }

    // MARK: Typed calls

    /// Sends `call` and waits: the answer's model, or the error.
    public func perform<Answer>(_ call: JwtCall<Answer>) throws(MagicBellAPIError) -> Answered<Answer> {
        try Self.decode(try send(call.request), as: Answer.self)
    }

    /// Sends `call`; cancelling the task stops it (`.cancelled`).
    public func perform<Answer>(_ call: JwtCall<Answer>) async throws(MagicBellAPIError) -> Answered<Answer> {
        try Self.decode(try await send(call.request), as: Answer.self)
    }

    /// A 2xx answer as its model; 4xx and 5xx as `.http` with the raw body;
    /// anything else (a redirect, a body that is not the model) as invalid.
    static func decode<Answer: Decodable>(_ response: APIResponse, as type: Answer.Type)
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
            throw .http(status: response.status, body: response.body)
        default:
            throw .invalidResponse("status \(response.status)")
        }
    }

    // MARK: Raw calls

    /// Sends the request and waits for the answer, whatever its status.
    public func send(_ request: APIRequest) throws(MagicBellAPIError) -> APIResponse {
        let outcome = Outcome()
        _ = start(request) { outcome.set($0) }
        // `start` completes every call by its hard stop; the bound here only
        // keeps a worker from waiting forever should Dispatch never run it.
        // (Synchronization has no blocking wait; DispatchSemaphore is the toolchain's.)
        guard outcome.done.wait(timeout: .now() + timeout + 5) == .success else {
            throw .timeout(seconds: timeout)
        }
        return try outcome.get()
    }

    /// Sends the request; cancelling the task cancels the call.
    public func send(_ request: APIRequest) async throws(MagicBellAPIError) -> APIResponse {
        // A create must not reach MagicBell for a caller that has gone.
        guard !Task.isCancelled else { throw .cancelled }
        let running = Mutex<(task: URLSessionTask?, cancelled: Bool)>((nil, false))
        let result: Result<APIResponse, MagicBellAPIError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let task = start(request) { continuation.resume(returning: $0) }
                let cancelled = running.withLock { state in
                    state.task = task
                    return state.cancelled
                }
                if cancelled, let task { tasks.finish(task.taskIdentifier, with: .failure(.cancelled)) }
            }
        } onCancel: {
            let task = running.withLock { state in
                state.cancelled = true
                return state.task
            }
            if let task { tasks.finish(task.taskIdentifier, with: .failure(.cancelled)) }
        }
        return try result.get()
    }

    /// The URL a request goes to; nil only if `baseURL` cannot take the
    /// encoded path (then nothing is sent).
    public func url(for request: APIRequest) -> URL? {
        var path = request.operation.pathTemplate
        if let name = request.operation.pathParameter {
            path = path.replacingOccurrences(of: "{\(name)}", with: PercentEncoding.encode(request.pathValue ?? ""))
        }
        var text = baseURL.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        text += "/" + path
        if !request.query.isEmpty {
            text += "?" + request.query.map { PercentEncoding.encode($0.name) + "=" + PercentEncoding.encode($0.value) }
                .joined(separator: "&")
        }
        return URL(string: text)
    }

    /// The one core: starts the call; `completion` runs exactly once, by
    /// `timeout` + `hardStopMargin` at the latest (at once, with no task, if
    /// the URL cannot be made).
    private func start(_ request: APIRequest,
                       completion: @escaping @Sendable (Result<APIResponse, MagicBellAPIError>) -> Void) -> URLSessionTask? {
        guard let url = url(for: request) else {
            completion(.failure(.unreachable("the request URL could not be made from MAGICBELL_API_URL")))
            return nil
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.operation.method
        urlRequest.timeoutInterval = timeout
        urlRequest.setValue("Bearer \(projectToken)", forHTTPHeaderField: "Authorization")
        urlRequest.setValue("application/json", forHTTPHeaderField: "Accept")
        // A fresh connection per call: libcurl (under URLSession on Linux)
        // silently re-sends a request whose reused connection dropped, and a
        // create must never be sent twice.
        urlRequest.setValue("close", forHTTPHeaderField: "Connection")
        if let body = request.body {
            urlRequest.httpBody = Data(body)
            urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let task = session.dataTask(with: urlRequest)
        tasks.register(task, timeout: timeout, hardStop: timeout + Self.hardStopMargin, completion: completion)
        task.resume()
        return task
    }

    // MARK: The six operations, async, named as in MagicBell's SDKs.

    public func fetchProjectTokens(_ page: Pagination = Pagination()) async throws(MagicBellAPIError) -> TokenList {
        try await perform(.fetchProjectTokens(page)).value
    }

    public func createProjectJwt(_ body: CreateProjectTokenRequest) async throws(MagicBellAPIError) -> CreatedToken {
        try await perform(.createProjectJwt(body)).value
    }

    public func discardProjectJwt(tokenID: String) async throws(MagicBellAPIError) -> DiscardedToken {
        try await perform(.discardProjectJwt(tokenID: tokenID)).value
    }

    public func createUserJwt(_ body: CreateUserTokenRequest) async throws(MagicBellAPIError) -> CreatedToken {
        try await perform(.createUserJwt(body)).value
    }

    public func discardUserJwt(tokenID: String) async throws(MagicBellAPIError) -> DiscardedToken {
        try await perform(.discardUserJwt(tokenID: tokenID)).value
    }

    public func fetchUserTokens(userID: String, _ page: Pagination = Pagination()) async throws(MagicBellAPIError) -> TokenList {
        try await perform(.fetchUserTokens(userID: userID, page)).value
    }
}

/// A blocking caller's slot for its one result.
private final class Outcome: Sendable {
    let done = DispatchSemaphore(value: 0)
    private let result = Mutex<Result<APIResponse, MagicBellAPIError>?>(nil)

    func set(_ value: Result<APIResponse, MagicBellAPIError>) {
        result.withLock { $0 = value }
        done.signal()
    }

    func get() throws(MagicBellAPIError) -> APIResponse {
        // Set before `done` was signalled; the fallback is unreachable.
        try (result.withLock { $0 } ?? .failure(.unreachable("no answer"))).get()
    }
}
