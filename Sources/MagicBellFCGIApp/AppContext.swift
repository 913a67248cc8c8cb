import Dispatch
import Logging
import MagicBellAPI

/// What all workers share: the configuration and the few thread-safe
/// objects the admin route needs. Per-worker state (a minter, buffers) is
/// made from it by each `MagicBellResponder`.
public final class AppContext: Sendable {
    public let configuration: Configuration
    public let logger: Logger
    public let clock: @Sendable () -> Int
    /// nil without a project token.
    public let client: JwtServiceClient?
    let adminGate: AdminGate
    let audit: AuditLog

    /// Audit lines go to stderr, each in one write(2).
    public static let auditToStandardError: @Sendable (String) -> Void = AuditLog.standardError

    public init(configuration: Configuration, logger: Logger, workers: Int = 8,
                clock: @escaping @Sendable () -> Int = MagicBellResponder.systemClock,
                audit: @escaping @Sendable (String) -> Void = AppContext.auditToStandardError) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        client = configuration.projectToken.map {
            JwtServiceClient(projectToken: $0.value, baseURL: configuration.apiURL,
                             timeout: configuration.upstreamTimeout, userAgent: "magicbell-fcgi/\(MagicBellFCGIVersion.current)")
        }
        adminGate = AdminGate(limit: configuration.adminMaxConcurrent ?? Configuration.defaultAdminMaxConcurrent(workers: workers))
        self.audit = AuditLog(sink: audit)
    }
}

/// Bounds the admin calls in flight, so that a slow MagicBell can hold at
/// most this many workers; a call over the bound is refused at once.
final class AdminGate: Sendable {
    private let slots: DispatchSemaphore

    init(limit: Int) { slots = DispatchSemaphore(value: limit) }

    func tryEnter() -> Bool { slots.wait(timeout: .now()) == .success }
    func leave() { slots.signal() }
}
