import Glibc
import CFastCGI
import Synchronization

/// The connections the server holds, bounded: how many are open (at most
/// `--max-connections`, beyond which new ones are closed at once), and since
/// when each parked one has been idle, so that one idle past
/// `--idle-timeout` is shut down. A peer that opens connections and sends
/// nothing, or keeps thousands alive, costs a bounded number of descriptors
/// and no thread.
///
/// Idle times live in a table indexed by descriptor, one atomic per slot:
/// 0 free, -1 being shut down by the reaper, else the millisecond it was
/// parked (+1). A worker woken for a parked connection claims its slot
/// (CAS to 0) before using it, and the reaper claims it (CAS to -1) before
/// `shutdown(2)`, and only shuts down, never closes: the worker that is
/// then woken sees the end of the stream and closes it. So a descriptor is
/// never shut down after its number was reused.
final class IdleConnections: @unchecked Sendable { // @unchecked: `slots` is only read and written through its atomics
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private let capacity: Int
    private let open: CountingGate

    init(maxConnections: Int) {
        open = CountingGate(limit: maxConnections)
        // Descriptors above the table are counted but never reaped.
        capacity = min(mbf_nofile_limit(), 1 << 16)
        slots = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: capacity)
        for i in 0..<capacity { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    /// Connections open now.
    var count: Int { open.count }

    /// A new connection: false (and not counted) when the server holds its maximum.
    func admit() -> Bool { open.tryEnter() }

    /// A connection was closed.
    func closed() { open.leave() }

    /// `fd` waits in the shared set from `now` (monotonic seconds).
    func parked(_ fd: Int32, now: Double) {
        guard Int(fd) < capacity else { return }
        slots[Int(fd)].store(Int(now * 1000) + 1, ordering: .releasing)
    }

    /// A worker takes `fd` up: waits out a shutdown in progress, then marks it busy.
    func claim(_ fd: Int32) {
        guard Int(fd) < capacity else { return }
        while true {
            let value = slots[Int(fd)].load(ordering: .acquiring)
            if value == -1 { sched_yield(); continue }
            if slots[Int(fd)].compareExchange(expected: value, desired: 0, ordering: .acquiringAndReleasing).exchanged { return }
        }
    }

    /// Shuts down every connection parked for longer than `timeout`; returns how many.
    func reap(now: Double, timeout: Double) -> Int {
        let cutoff = Int((now - timeout) * 1000) + 1
        var reaped = 0
        for fd in 0..<capacity {
            let value = slots[fd].load(ordering: .relaxed)
            guard value > 0, value < cutoff,
                  slots[fd].compareExchange(expected: value, desired: -1, ordering: .acquiringAndReleasing).exchanged else { continue }
            shutdown(Int32(fd), Int32(SHUT_RDWR))
            slots[fd].store(0, ordering: .releasing)
            reaped += 1
        }
        return reaped
    }
}
