import Logging

/// Why the server closed a connection or refused a request, as the metrics
/// label it (`magicbell_fcgi_fastcgi_refused_total{reason}`).
public enum RefusalReason: String, CaseIterable, Sendable {
    /// A peer `--peer-uid` or `FCGI_WEB_SERVER_ADDRS` does not allow.
    case peer
    /// Over `--max-connections`, or over the bytes that requests still
    /// arriving may hold together.
    case limit
    /// Records that can never be valid: the connection is closed.
    case malformed
    /// A request cut short: its connection closed, or it was not whole
    /// within `--io-timeout` (a client that aborted its upload, through a
    /// server that streams bodies).
    case incomplete
    /// A request answered with END_REQUEST and not served: a role other
    /// than RESPONDER, a second request id on one connection.
    case unsupported

    /// Its place in `allCases`: the index of its counter and its log line.
    var index: Int { Self.allCases.firstIndex(of: self)! }

    var message: Logger.Message {
        switch self {
        case .peer, .limit: return "refused a connection"
        case .malformed: return "refused a malformed FastCGI request"
        case .incomplete: return "a FastCGI request ended before it was whole"
        case .unsupported: return "refused a FastCGI request"
        }
    }
}

/// Every refusal, counted and logged: one warning line a second at most
/// for each reason, with how many were left out, so that a peer that
/// reconnects, sends garbage or aborts uploads in a loop cannot flood the
/// log (issue 19 §5). Shared by the server and all its threads.
final class Refusals: Sendable {
    private let activity: WorkerActivity
    private let logger: Logger
    private let lines: [RateLimitedWarning]

    init(activity: WorkerActivity, logger: Logger) {
        self.activity = activity
        self.logger = logger
        lines = RefusalReason.allCases.map { _ in RateLimitedWarning() }
    }

    func record(_ reason: RefusalReason, _ detail: String) {
        activity.countRefused(reason)
        lines[reason.index].warn(logger, reason.message, detail)
    }
}
