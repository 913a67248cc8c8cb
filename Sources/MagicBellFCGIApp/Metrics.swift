import Glibc
import FastCGIServer
import MagicBellAPI
import Synchronization

/// The process's counters, served in Prometheus text format at
/// `…/magicbell-admin/metrics`. One instance for the process's life: it
/// outlives configuration reloads.
///
/// The token path touches only its worker's own `TokenCounters` (relaxed
/// atomic adds on a cache line no other worker writes); a scrape sums them.
/// Admin calls and upstream latencies are rare and bounded by the admin
/// gate, so they share one mutex.
public final class Metrics: Sendable {
    /// Token-route outcomes other than a token, by error code: the codes a
    /// token request can end with, then "other". A fixed list, so a worker's
    /// counters are a fixed array and the label set is bounded.
    static let refusalCodes: [ErrorCode] = [
        .unauthenticated, .invalidIdentity, .identityTooLong, .methodNotAllowed, .notFound,
        .upstreamError, .upstreamUnreachable, .upstreamInvalid, .upstreamTimeout, .mintBusy, .invalidPath,
    ]
    static let refusalReasons = refusalCodes.map(\.rawValue) + ["other"]
    /// Each code's slot in a worker's counters (the last one is "other").
    static let refusalSlot: [Int] = ErrorCode.allCases.map { refusalCodes.firstIndex(of: $0) ?? refusalCodes.count }
    /// Upper bounds of the upstream latency histogram, in seconds.
    static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    final class TokenCounters: Sendable {
        let minted = Atomic<Int>(0)
        let healthChecks = Atomic<Int>(0)
        let refusals: [Counter]
        let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        init() { refusals = Metrics.refusalReasons.map { _ in Counter() } }

        func refused(_ code: ErrorCode) {
            refusals[Metrics.refusalSlot[code.slot]].value.add(1, ordering: .relaxed)
        }
    }

    /// An atomic in its own allocation, so it can sit in an array.
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    struct Histogram {
        var buckets = [Int](repeating: 0, count: Metrics.latencyBuckets.count)
        var count = 0
        var sum = 0.0

        mutating func observe(_ seconds: Double) {
            if let index = Metrics.latencyBuckets.firstIndex(where: { seconds <= $0 }) { buckets[index] += 1 }
            count += 1
            sum += seconds
        }
    }

    struct Shared {
        var workers: [TokenCounters] = []
        var admin: [String: [Int: Int]] = [:]       // operation → status → count
        var upstream: [String: Histogram] = [:]     // operation → latencies
    }

    private let shared = Mutex(Shared())
    private let activity: WorkerActivity?
    private let started = time(nil)

    /// `activity`: the server's workers, for `magicbell_fcgi_workers_busy`.
    public init(activity: WorkerActivity? = nil) { self.activity = activity }

    /// A worker's own token counters, registered once per worker.
    func registerWorker() -> TokenCounters {
        let counters = TokenCounters()
        shared.withLock { $0.workers.append(counters) }
        return counters
    }

    /// One admin request, by operation ("none" when refused before one was
    /// resolved) and the status it was answered with.
    func countAdmin(operation: String, status: Int) {
        shared.withLock { $0.admin[operation, default: [:]][status, default: 0] += 1 }
    }

    /// One call to MagicBell, answered or not.
    func observeUpstream(operation: String, seconds: Double) {
        shared.withLock { $0.upstream[operation, default: Histogram()].observe(seconds) }
    }

    /// The Prometheus text exposition (format 0.0.4).
    public func render() -> String {
        let (workers, admin, upstream) = shared.withLock { ($0.workers, $0.admin, $0.upstream) }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ labels: [(String, String)] = [], _ value: String) {
            let list = labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
            out += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(list)} \(value)\n"
        }

        family("magicbell_fcgi_build_info", "gauge", "Always 1; the version and commit are labels.")
        sample("magicbell_fcgi_build_info", [("version", MagicBellFCGIVersion.current), ("commit", MagicBellFCGIVersion.commit)], "1")
        family("process_start_time_seconds", "gauge", "When the process started, in Unix seconds.")
        sample("process_start_time_seconds", [], "\(started)")

        family("magicbell_fcgi_tokens_minted_total", "counter", "Tokens handed out by the token route.")
        sample("magicbell_fcgi_tokens_minted_total", [], "\(workers.reduce(0) { $0 + $1.minted.load(ordering: .relaxed) })")

        family("magicbell_fcgi_health_checks_total", "counter", "Requests to the health route, answered or refused.")
        sample("magicbell_fcgi_health_checks_total", [], "\(workers.reduce(0) { $0 + $1.healthChecks.load(ordering: .relaxed) })")

        family("magicbell_fcgi_token_refusals_total", "counter", "Token-route requests answered with an error, by error code.")
        for (index, reason) in Self.refusalReasons.enumerated() {
            let total = workers.reduce(0) { $0 + $1.refusals[index].value.load(ordering: .relaxed) }
            sample("magicbell_fcgi_token_refusals_total", [("reason", reason)], "\(total)")
        }

        family("magicbell_fcgi_admin_requests_total", "counter", "Admin-route requests, by operation and answered status.")
        for operation in admin.keys.sorted() {
            for (status, count) in admin[operation]!.sorted(by: { $0.key < $1.key }) {
                sample("magicbell_fcgi_admin_requests_total", [("operation", operation), ("status", "\(status)")], "\(count)")
            }
        }

        family("magicbell_fcgi_upstream_request_duration_seconds", "histogram",
               "Time each call to MagicBell took, answered or not, by operation.")
        for operation in upstream.keys.sorted() {
            let histogram = upstream[operation]!
            var cumulative = 0
            for (bound, count) in zip(Self.latencyBuckets, histogram.buckets) {
                cumulative += count
                sample("magicbell_fcgi_upstream_request_duration_seconds_bucket",
                       [("operation", operation), ("le", "\(bound)")], "\(cumulative)")
            }
            let name = "magicbell_fcgi_upstream_request_duration_seconds"
            sample(name + "_bucket", [("operation", operation), ("le", "+Inf")], "\(histogram.count)")
            sample(name + "_sum", [("operation", operation)], "\(histogram.sum)")
            sample(name + "_count", [("operation", operation)], "\(histogram.count)")
        }

        if let activity {
            family("magicbell_fcgi_event_loops", "gauge", "Event-loop threads (--event-loops): they read every request and answer tokens, health and metrics.")
            sample("magicbell_fcgi_event_loops", [], "\(activity.eventLoops)")
            family("magicbell_fcgi_workers", "gauge", "Blocking-pool threads (--workers): they answer admin calls and MAGICBELL_MINT=api tokens.")
            sample("magicbell_fcgi_workers", [], "\(activity.workers)")
            family("magicbell_fcgi_workers_busy", "gauge", "Blocking-pool threads handling a request now.")
            sample("magicbell_fcgi_workers_busy", [], "\(activity.busy)")
            family("magicbell_fcgi_fastcgi_refused_total", "counter",
                   "FastCGI connections closed, or requests refused, by reason: peer, limit, malformed, incomplete, unsupported.")
            for reason in RefusalReason.allCases {
                sample("magicbell_fcgi_fastcgi_refused_total", [("reason", reason.rawValue)], "\(activity.refusals(reason))")
            }
            family("magicbell_fcgi_fastcgi_requests_total", "counter",
                   "FastCGI requests handed to the app, by the threads that answered them: event_loop or pool.")
            sample("magicbell_fcgi_fastcgi_requests_total", [("thread", "event_loop")], "\(activity.eventLoopRequests)")
            sample("magicbell_fcgi_fastcgi_requests_total", [("thread", "pool")], "\(activity.poolRequests)")
        }
        return out
    }
}

