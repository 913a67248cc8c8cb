import Logging
import Synchronization

/// One warning line a second at most, with how many were left out: a peer
/// that reconnects in a loop cannot flood the log.
final class RateLimitedWarning: Sendable {
    private let state = Mutex<(last: Double, suppressed: Int)>((last: -1, suppressed: 0))

    func warn(_ logger: Logger, _ message: Logger.Message, _ reason: String) {
        let now = MonotonicClock.now()
        let suppressed: Int? = state.withLock { state in
            guard now - state.last >= 1 else {
                state.suppressed += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.suppressed
        }
        guard let suppressed else { return }
        logger.warning(message, metadata: ["reason": "\(reason)", "suppressed_since_last_line": .stringConvertible(suppressed)])
    }
}
