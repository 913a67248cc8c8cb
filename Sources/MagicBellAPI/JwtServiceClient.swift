import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One call to the JwtService, before it is sent.
public struct APIRequest: Sendable {
    public var operation: JwtOperation
    /// The decoded value of the path parameter; sent as exactly one segment.
    public var pathValue: String?
    public var query: [(name: String, value: String)]
    /// JSON, for the two creates.
    public var body: [UInt8]?

    public init(operation: JwtOperation, pathValue: String? = nil,
                query: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.operation = operation
        self.pathValue = pathValue
        self.query = query
        self.body = body
    }
}

/// What MagicBell answered: any status, the raw body.
public struct APIResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
}

public enum MagicBellAPIError: Error, Equatable, CustomStringConvertible {
    /// MagicBell answered with a status of 400 or more; the raw body is kept.
    case http(status: Int, body: [UInt8])
    /// No complete answer within the timeout.
    case timeout(seconds: Double)
    /// No connection, or it broke before the answer was complete.
    case unreachable(String)
    /// An answer that is not what the API documents (not JSON, wrong shape, too large).
    case invalidResponse(String)

    public var description: String {
        switch self {
        case .http(let status, let body):
            return "MagicBell answered \(status): \(String(decoding: body.prefix(200), as: UTF8.self))"
        case .timeout(let seconds): return "MagicBell did not answer within \(seconds) s"
        case .unreachable(let why): return "MagicBell is unreachable: \(why)"
        case .invalidResponse(let why): return "MagicBell's answer is invalid: \(why)"
        }
    }
}

/// A client for MagicBell's JwtService, authenticated with a project token.
///
/// Every call has a deadline, answers are capped at `maxResponseBytes`, and
/// redirects are never followed (the project token must not travel to
/// another host). `send` blocks, for thread-per-request servers; the six
/// typed methods are async.
public final class JwtServiceClient: @unchecked Sendable {
    public static let defaultBaseURL = URL(string: "https://api.magicbell.com/v2")!
    public static let defaultTimeout: Double = 10
    public static let maxResponseBytes = 1 << 20

    public let baseURL: URL
    public let timeout: Double
    private let projectToken: String
    private let session: URLSession
    private let tasks: TaskTable

    public init(projectToken: String, baseURL: URL = JwtServiceClient.defaultBaseURL,
                timeout: Double = JwtServiceClient.defaultTimeout, userAgent: String = "magicbell-fcgi") {
        self.projectToken = projectToken
        self.baseURL = baseURL
        self.timeout = timeout
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.httpAdditionalHeaders = ["User-Agent": userAgent]
        tasks = TaskTable(limit: Self.maxResponseBytes)
        session = URLSession(configuration: configuration, delegate: tasks, delegateQueue: nil)
    }

    deinit { session.invalidateAndCancel() }

    /// The URL a request goes to.
    public func url(for request: APIRequest) -> URL {
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
        return URL(string: text)!
    }

    /// Sends the request and waits for the answer, whatever its status.
    /// Never retries: the creates are not idempotent.
    public func send(_ request: APIRequest) throws(MagicBellAPIError) -> APIResponse {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<APIResponse, MagicBellAPIError>?
        let task = start(request) { result in
            outcome = result
            done.signal()
        }
        // URLSession enforces the timeout too; this is the hard stop.
        if done.wait(timeout: .now() + timeout + 0.25) == .timedOut {
            task.cancel()
            tasks.abandon(task)
            throw .timeout(seconds: timeout)
        }
        return try outcome!.get()
    }

    private func start(_ request: APIRequest,
                       completion: @escaping @Sendable (Result<APIResponse, MagicBellAPIError>) -> Void) -> URLSessionTask {
        var urlRequest = URLRequest(url: url(for: request))
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
        tasks.register(task, timeout: timeout, completion: completion)
        task.resume()
        return task
    }

    private func perform(_ request: APIRequest) async throws -> APIResponse {
        try await withCheckedThrowingContinuation { continuation in
            _ = start(request) { continuation.resume(with: $0.mapError { $0 as any Error }) }
        }
    }

    private func call<Answer: Decodable>(_ request: APIRequest, as type: Answer.Type) async throws -> Answer {
        let response = try await perform(request)
        guard (200..<300).contains(response.status) else {
            throw MagicBellAPIError.http(status: response.status, body: response.body)
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: Data(response.body))
        } catch {
            throw MagicBellAPIError.invalidResponse("not a \(Answer.self): \(error)")
        }
    }

    private static func encode<Body: Encodable>(_ body: Body) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(body)) ?? Data("{}".utf8))
    }

    // MARK: The six operations, named as in MagicBell's SDKs.

    public func fetchProjectTokens(_ page: Pagination = Pagination()) async throws -> TokenList {
        try await call(APIRequest(operation: .fetchProjectTokens, query: page.queryItems), as: TokenList.self)
    }

    public func createProjectJwt(_ body: CreateProjectTokenRequest) async throws -> CreatedToken {
        try await call(APIRequest(operation: .createProjectJwt, body: Self.encode(body)), as: CreatedToken.self)
    }

    public func discardProjectJwt(tokenID: String) async throws -> DiscardedToken {
        try await call(APIRequest(operation: .discardProjectJwt, pathValue: tokenID), as: DiscardedToken.self)
    }

    public func createUserJwt(_ body: CreateUserTokenRequest) async throws -> CreatedToken {
        try await call(APIRequest(operation: .createUserJwt, body: Self.encode(body)), as: CreatedToken.self)
    }

    public func discardUserJwt(tokenID: String) async throws -> DiscardedToken {
        try await call(APIRequest(operation: .discardUserJwt, pathValue: tokenID), as: DiscardedToken.self)
    }

    public func fetchUserTokens(userID: String, _ page: Pagination = Pagination()) async throws -> TokenList {
        try await call(APIRequest(operation: .fetchUserTokens, pathValue: userID, query: page.queryItems), as: TokenList.self)
    }
}

/// Collects each task's answer, capped in size, and finishes it exactly once.
final class TaskTable: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private struct Entry {
        var status = 0
        var body: [UInt8] = []
        var overflowed = false
        let timeout: Double
        let completion: @Sendable (Result<APIResponse, MagicBellAPIError>) -> Void
    }

    private let limit: Int
    private let lock = NSLock()
    private var entries: [Int: Entry] = [:]

    init(limit: Int) { self.limit = limit }

    func register(_ task: URLSessionTask, timeout: Double,
                  completion: @escaping @Sendable (Result<APIResponse, MagicBellAPIError>) -> Void) {
        lock.withLock { entries[task.taskIdentifier] = Entry(timeout: timeout, completion: completion) }
    }

    /// Forgets a task whose caller gave up waiting.
    func abandon(_ task: URLSessionTask) {
        _ = lock.withLock { entries.removeValue(forKey: task.taskIdentifier) }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        lock.withLock { entries[dataTask.taskIdentifier]?.status = (response as? HTTPURLResponse)?.statusCode ?? 0 }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let overflow: Bool = lock.withLock {
            guard var entry = entries[dataTask.taskIdentifier] else { return false }
            if entry.body.count + data.count > limit {
                entry.overflowed = true
                entries[dataTask.taskIdentifier] = entry
                return true
            }
            entry.body.append(contentsOf: data)
            entries[dataTask.taskIdentifier] = entry
            return false
        }
        if overflow { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil) // answer with the 3xx itself; never carry the token elsewhere
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        guard let entry = lock.withLock({ entries.removeValue(forKey: task.taskIdentifier) }) else { return }
        if entry.overflowed {
            entry.completion(.failure(.invalidResponse("the answer is larger than \(limit) bytes")))
        } else if let error {
            let code = (error as? URLError)?.code
            if code == .timedOut {
                entry.completion(.failure(.timeout(seconds: entry.timeout)))
            } else {
                entry.completion(.failure(.unreachable(Self.describe(error))))
            }
        } else {
            entry.completion(.success(APIResponse(status: entry.status, body: entry.body)))
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let urlError = error as? URLError else { return "\(error)" }
        switch urlError.code {
        case .cannotConnectToHost: return "connection refused"
        case .cannotFindHost, .dnsLookupFailed: return "host not found"
        case .networkConnectionLost: return "the connection was dropped"
        case .badServerResponse: return "not an HTTP answer"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot: return "TLS failed"
        default: return urlError.localizedDescription
        }
    }
}
