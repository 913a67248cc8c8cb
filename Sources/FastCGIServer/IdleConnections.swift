import Glibc
import CFastCGI
import Synchronization

/// The connections the server holds, bounded: how many are open (at most
/// `--max-connections`, beyond which new ones are closed at once), until
/// when each parked one may wait, and the requests still arriving that
/// parked connections hold. A connection idle past `--idle-timeout`, or a
/// request not whole within `--io-timeout` of its first byte, is shut
/// down. A peer that opens connections and sends nothing, keeps thousands
/// alive, or trickles its records costs a bounded number of descriptors and
/// bytes, and no thread.
///
/// Deadlines live in a table indexed by descriptor, one atomic per slot:
/// 0 free, -1 being shut down by the reaper, else the millisecond (of the
/// monotonic clock) it may wait until. A worker woken for a parked
/// connection claims its slot (CAS to 0) before using it, and the reaper
/// claims it (CAS to -1) before `shutdown(2)`, and only shuts down, never
/// closes: the worker that is then woken sees the end of the stream and
/// closes it. So a descriptor is never shut down after its number was reused.
///
/// A parked request still arriving (`PartialRequest`) sits in a second table
/// by descriptor. The worker that parks it writes its entry before it
/// stamps the slot (releasing), and the worker that claims the slot
/// (acquiring) takes it: the slot's atomics order the two, and the reaper
/// never touches it.
final class IdleConnections: @unchecked Sendable {
    // @unchecked: `slots` is only read and written through its atomics, and
    // `parkedPartials[fd]` only by the worker that parks or has claimed `fd`.
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private let parkedPartials: UnsafeMutablePointer<PartialRequest?>
    private let capacity: Int
    private let open: CountingGate
    /// Bytes held by parked partial requests, and the most they may hold together.
    private let held = Atomic<Int>(0)
    let maxHeldBytes: Int
    /// Parked partial requests now.
    private let partialCount = Atomic<Int>(0)

    init(maxConnections: Int, maxHeldBytes: Int) {
        open = CountingGate(limit: maxConnections)
        self.maxHeldBytes = maxHeldBytes
        // Descriptors above the table are counted but never reaped, and
        // cannot park a partial request.
        capacity = min(mbf_nofile_limit(), 1 << 16)
        slots = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: capacity)
        for i in 0..<capacity { (slots + i).initialize(to: Atomic(0)) }
        parkedPartials = UnsafeMutablePointer<PartialRequest?>.allocate(capacity: capacity)
        parkedPartials.initialize(repeating: nil, count: capacity)
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
        parkedPartials.deinitialize(count: capacity)
        parkedPartials.deallocate()
    }

    /// Connections open now.
    var count: Int { open.count }

    /// Bytes held by parked partial requests now.
    var heldBytes: Int { held.load(ordering: .relaxed) }

    /// Parked connections with a request still arriving, to be answered, now.
    var partials: Int { partialCount.load(ordering: .relaxed) }

    /// A new connection: false (and not counted) when the server holds its maximum.
    func admit() -> Bool { open.tryEnter() }

    /// A connection was closed.
    func closed() { open.leave() }

    /// `fd` waits in the shared set until `deadline` (monotonic seconds),
    /// with `partial`, its request still arriving, if any. Returns why it
    /// cannot (then nothing was recorded), or nil.
    func park(_ fd: Int32, until deadline: Double, holding partial: PartialRequest? = nil) -> String? {
        guard Int(fd) < capacity else {
            return partial == nil ? nil : "descriptor \(fd) is beyond the table of parked requests"
        }
        if let partial {
            let bytes = partial.heldBytes
            guard held.add(bytes, ordering: .relaxed).newValue <= maxHeldBytes else {
                held.subtract(bytes, ordering: .relaxed)
                return "requests still arriving hold over \(maxHeldBytes) bytes"
            }
            partial.parkedBytes = bytes
            // A stop waits for requests still to be answered, not for the
            // rest of a body that is only being dropped.
            partial.awaited = partial.intake.phase != .answered
            parkedPartials[Int(fd)] = partial
            if partial.awaited { partialCount.add(1, ordering: .relaxed) }
        }
        slots[Int(fd)].store(max(1, Int(deadline * 1000)), ordering: .releasing)
        return nil
    }

    /// A worker takes `fd` up: waits out a shutdown in progress, marks it
    /// busy, and takes its partial request, if it has one.
    func claim(_ fd: Int32) -> PartialRequest? {
        guard Int(fd) < capacity else { return nil }
        while true {
            let value = slots[Int(fd)].load(ordering: .acquiring)
            if value == -1 { sched_yield(); continue }
            if slots[Int(fd)].compareExchange(expected: value, desired: 0, ordering: .acquiringAndReleasing).exchanged { break }
        }
        guard let partial = parkedPartials[Int(fd)] else { return nil }
        parkedPartials[Int(fd)] = nil
        held.subtract(partial.parkedBytes, ordering: .relaxed)
        if partial.awaited { partialCount.subtract(1, ordering: .relaxed) }
        return partial
    }

    /// Shuts down every parked connection whose deadline has passed; returns how many.
    func reap(now: Double) -> Int {
        let cutoff = Int(now * 1000)
        var reaped = 0
        for fd in 0..<capacity {
            let value = slots[fd].load(ordering: .relaxed)
            guard value > 0, value <= cutoff,
                  slots[fd].compareExchange(expected: value, desired: -1, ordering: .acquiringAndReleasing).exchanged else { continue }
            shutdown(Int32(fd), Int32(SHUT_RDWR))
            slots[fd].store(0, ordering: .releasing)
            reaped += 1
        }
        return reaped
    }
}
