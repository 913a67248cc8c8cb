import FastCGIServer
import Logging
import MagicBellAPI
import Synchronization

/// What all workers share: the configuration and the few thread-safe
/// objects the admin route needs. Per-worker state (a minter, buffers) is
/// made from it by each `MagicBellResponder`.
public final class AppContext: Sendable {
    public let configuration: Configuration
    public let logger: Logger
    public let clock: @Sendable () -> Int
    /// nil without a project token.
    public let client: JWTServiceClient?
    /// The process's counters; pass the same instance to every context of a
    /// process, so that counts survive a reload.
    public let metrics: Metrics
    /// The calls to MagicBell in flight, bounded so that a slow MagicBell
    /// can hold at most this many workers; a call over the bound is refused at once.
    let adminGate: CountingGate
    /// `MAGICBELL_MINT=api`: token requests waiting on MagicBell.
    let mintGate: CountingGate
    let audit: AuditLog
    /// Set once api mode has warned that MagicBell's tokens lack `api_key`.
    let warnedAboutMissingAPIKey = Atomic<Bool>(false)

    public init(configuration: Configuration, logger: Logger, workers: Int = 8,
                clock: @escaping @Sendable () -> Int = MagicBellResponder.systemClock,
                metrics: Metrics = Metrics()) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.metrics = metrics
        client = configuration.projectToken.map {
            JWTServiceClient(projectToken: $0.value, baseURL: configuration.apiURL,
                             timeout: configuration.upstreamTimeout, userAgent: "magicbell-fcgi/\(MagicBellFCGIVersion.current)",
                             proxy: configuration.httpsProxy?.url, noProxy: configuration.noProxy?.list)
        }
        adminGate = CountingGate(limit: configuration.adminMaxConcurrent ?? Configuration.defaultAdminMaxConcurrent(workers: workers))
        mintGate = CountingGate(limit: configuration.mintMaxConcurrent ?? Configuration.defaultMintMaxConcurrent(workers: workers))
        audit = AuditLog(logger: logger)
    }

    /// One call to MagicBell, timed into the upstream latency histogram.
    func perform<Answer>(_ call: JwtCall<Answer>, with client: JWTServiceClient) throws(MagicBellAPIError) -> Answered<Answer> {
        let started = MonotonicClock.now()
        defer { metrics.observeUpstream(operation: call.request.operation.name, seconds: MonotonicClock.now() - started) }
        return try client.perform(call)
    }
}
