import CLibSSL
import Glibc
import Synchronization

/// A point on the monotonic clock by which the whole exchange must end.
struct Deadline {
    let at: Double

    /// A NaN or negative timeout is none left; an infinite one, a day.
    init(seconds: Double) {
        let bounded = seconds.isNaN ? 0 : min(max(seconds, 0), 86_400)
        at = Self.now() + bounded
    }

    init(at: Double) { self.at = at }

    var remainingSeconds: Double { max(0, at - Self.now()) }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// What is left, in whole milliseconds for poll(2), rounded up so that
    /// a wait never ends just before the deadline and spins.
    var remainingMilliseconds: Int32 {
        let left = (at - Self.now()) * 1000
        return left <= 0 ? 0 : Int32(min(left.rounded(.up), Double(Int32.max)))
    }
}

/// Stops an exchange from another thread: whatever it waits on (the name
/// lookup, the connection, an answer) ends at once with `.cancelled`.
public final class Cancellation: Sendable {
    /// An eventfd that every wait of the exchange polls beside its socket.
    let descriptor: Int32
    private let cancelled = Atomic<Bool>(false)

    public init() {
        descriptor = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    public func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if descriptor >= 0 { _ = eventfd_write(descriptor, 1) }
    }
}

/// Waits until `descriptor` is ready for `events`, the deadline passes
/// (`.timedOut`) or the exchange is cancelled (`.cancelled`).
func wait(for descriptor: Int32, _ events: Int16, until deadline: Deadline,
          cancellation: Cancellation?) throws(ExchangeFailure) {
    var fds = [pollfd(fd: descriptor, events: events, revents: 0),
               pollfd(fd: cancellation?.descriptor ?? -1, events: Int16(POLLIN), revents: 0)]
    while true {
        if cancellation?.isCancelled == true { throw .cancelled }
        let timeout = deadline.remainingMilliseconds
        guard timeout > 0 else { throw .timedOut }
        let ready = poll(&fds, 2, timeout)
        if ready < 0 {
            if errno == EINTR { continue }
            throw .unreachable("poll failed (errno \(errno))")
        }
        if fds[1].revents != 0 || cancellation?.isCancelled == true { throw .cancelled }
        // POLLERR and POLLHUP count as ready: the read or write that follows reports them.
        if fds[0].revents != 0 { return }
    }
}
