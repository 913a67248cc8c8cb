import Synchronization

/// The configuration in force, replaceable while serving (SIGHUP).
///
/// Workers check `generation` once per request, an atomic load with no
/// lock; only when it changed do they take the lock, fetch the new context
/// and rebuild their minter, between two requests, so no request fails and
/// none is served half with the old and half with the new configuration.
public final class ContextHolder: Sendable {
    private let current: Mutex<AppContext>
    private let counter = Atomic<Int>(0)

    public init(_ context: AppContext) { current = Mutex(context) }

    /// Incremented by every `replace`.
    public var generation: Int { counter.load(ordering: .relaxed) }

    /// The context and the generation it belongs to.
    public func snapshot() -> (AppContext, Int) {
        current.withLock { ($0, counter.load(ordering: .relaxed)) }
    }

    public func replace(with context: AppContext) {
        current.withLock {
            $0 = context
            counter.add(1, ordering: .relaxed)
        }
    }
}
