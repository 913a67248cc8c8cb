import CCurl
import Glibc
import Synchronization

/// Stops an exchange from another thread until its request is sent: the
/// call's wait (name lookup, connection, TLS handshake) ends at once with
/// `.cancelled`. Once the request is on its way, a cancellation is ignored:
/// MagicBell may act on it, and a created token must not be lost.
public final class Cancellation: Sendable {
    /// An eventfd that the call's `curl_multi_poll` watches beside libcurl's
    /// sockets, so that `cancel()` wakes it whatever it waits on.
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
