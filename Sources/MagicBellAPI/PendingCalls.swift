import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// The calls in flight, as URLSession's delegate: collects each answer,
/// capped in size, and finishes each call exactly once, by whichever comes
/// first: the transport's end, the hard stop, or a cancellation.
final class PendingCalls: NSObject, URLSessionDataDelegate, Sendable {
    typealias Completion = @Sendable (Result<APIResponse, MagicBellAPIError>) -> Void

    private struct Entry {
        /// Held here, and only here, until the call ends: the hard stop's
        /// timer keeps the id alone, so a finished call's request (its
        /// body, its Authorization header) is freed at once.
        let task: URLSessionTask
        var status = 0
        var body: [UInt8] = []
        var overflowed = false
        let timeout: Double
        let completion: Completion
    }

    private let limit: Int
    private let entries = Mutex<[Int: Entry]>([:])

    init(limit: Int) { self.limit = limit }

    func register(_ task: URLSessionTask, timeout: Double, hardStop: Double, completion: @escaping Completion) {
        let id = task.taskIdentifier
        entries.withLock { $0[id] = Entry(task: task, timeout: timeout, completion: completion) }
        // The hard stop: a peer that trickles bytes can keep URLSession's
        // own timers from firing; this one fires regardless.
        DispatchQueue.global().asyncAfter(deadline: .now() + hardStop) { [weak self] in
            self?.finish(id, with: .failure(.timeout(seconds: timeout)))
        }
    }

    /// Ends call `id` now, if it is still in flight, and stops its transfer.
    func finish(_ id: Int, with result: Result<APIResponse, MagicBellAPIError>) {
        guard let entry = remove(id) else { return }
        entry.task.cancel()
        entry.completion(result)
    }

    private func remove(_ id: Int) -> Entry? {
        entries.withLock { $0.removeValue(forKey: id) }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        entries.withLock { $0[dataTask.taskIdentifier]?.status = (response as? HTTPURLResponse)?.statusCode ?? 0 }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let overflow: Bool = entries.withLock { entries in
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
        guard let entry = remove(task.taskIdentifier) else { return }
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
