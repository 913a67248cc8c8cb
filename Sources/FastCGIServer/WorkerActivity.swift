import Synchronization

/// What the server's threads are doing, for metrics: requests served on
/// the event loops and on the blocking pool, which pool threads are busy,
/// and how many connections and requests were refused, by reason.
///
/// Each thread writes only its own slot, and slots are separate, padded
/// allocations, so counting a request costs one uncontended atomic store
/// and threads never bounce a cache line between them. Readers (a metrics
/// scrape) sum the slots. Slots 0..<eventLoops are the loops', the rest the pool's.
public final class WorkerActivity: Sendable {
    final class Slot: Sendable {
        let busy = Atomic<Bool>(false)
        let served = Atomic<Int>(0)
        // Keeps the next slot's counters off this one's cache line.
        let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    }

    private let slots: [Slot]
    /// Refusals by reason, in `RefusalReason.allCases` order.
    private let refused: [Counter]
    final class Counter: Sendable { let value = Atomic<Int>(0) }

    /// The event loops, and the pool's threads (`--workers`).
    public let eventLoops: Int
    public let workers: Int

    public init(eventLoops: Int, workers: Int) {
        self.eventLoops = eventLoops
        self.workers = workers
        slots = (0..<(eventLoops + workers)).map { _ in Slot() }
        refused = RefusalReason.allCases.map { _ in Counter() }
    }

    /// Pool threads serving a request right now.
    public var busy: Int { slots[eventLoops...].reduce(0) { $0 + ($1.busy.load(ordering: .relaxed) ? 1 : 0) } }

    /// Connections closed, and requests refused, since the start, for `reason`.
    public func refusals(_ reason: RefusalReason) -> Int {
        refused[reason.index].value.load(ordering: .relaxed)
    }

    /// Requests served since the start on the event loops, and on the pool.
    public var eventLoopRequests: Int { slots[..<eventLoops].reduce(0) { $0 + $1.served.load(ordering: .relaxed) } }
    public var poolRequests: Int { slots[eventLoops...].reduce(0) { $0 + $1.served.load(ordering: .relaxed) } }

    func setBusy(_ slot: Int, _ busy: Bool) { slots[slot].busy.store(busy, ordering: .relaxed) }
    func countServed(_ slot: Int) {
        // Only this thread writes its slot: a plain load and store, no read-modify-write.
        let slot = slots[slot]
        slot.served.store(slot.served.load(ordering: .relaxed) + 1, ordering: .relaxed)
    }
    func countRefused(_ reason: RefusalReason) {
        refused[reason.index].value.add(1, ordering: .relaxed)
    }
}
