import Synchronization

/// What the workers are doing, for metrics: which are busy with a request,
/// how each request came in (peeked whole, or read record by record), and
/// how many connections and requests were refused, by reason.
///
/// Each worker writes only its own slot, and slots are separate, padded
/// allocations, so marking a request costs two uncontended atomic stores and
/// workers never bounce a cache line between them. Readers (a metrics
/// scrape) sum the slots.
public final class WorkerActivity: Sendable {
    final class Slot: Sendable {
        let busy = Atomic<Bool>(false)
        /// Requests served from a peek, and read record by record (see `ConnectionWorker`).
        let peeked = Atomic<Int>(0)
        let read = Atomic<Int>(0)
        // Keeps the next slot's flag off this one's cache line.
        let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    }

    private let slots: [Slot]
    /// Refusals by reason, in `RefusalReason.allCases` order.
    private let refused: [Counter]
    final class Counter: Sendable { let value = Atomic<Int>(0) }

    public init(workers: Int) {
        slots = (0..<workers).map { _ in Slot() }
        refused = RefusalReason.allCases.map { _ in Counter() }
    }

    /// The number of workers.
    public var workers: Int { slots.count }

    /// Workers handling a request right now (a scrape counts itself).
    public var busy: Int { slots.reduce(0) { $0 + ($1.busy.load(ordering: .relaxed) ? 1 : 0) } }

    /// Connections closed, and requests refused, since the start, for `reason`.
    public func refusals(_ reason: RefusalReason) -> Int {
        refused[reason.index].value.load(ordering: .relaxed)
    }

    /// Requests served since the start: peeked whole from the socket, or
    /// read record by record (management records, a request in pieces).
    public var peekedRequests: Int { slots.reduce(0) { $0 + $1.peeked.load(ordering: .relaxed) } }
    public var readRequests: Int { slots.reduce(0) { $0 + $1.read.load(ordering: .relaxed) } }

    func setBusy(_ worker: Int, _ busy: Bool) { slots[worker].busy.store(busy, ordering: .relaxed) }
    func countServed(_ worker: Int, peeked: Bool) {
        // Only this worker writes its slot: a plain load and store, no read-modify-write.
        let slot = slots[worker]
        if peeked {
            slot.peeked.store(slot.peeked.load(ordering: .relaxed) + 1, ordering: .relaxed)
        } else {
            slot.read.store(slot.read.load(ordering: .relaxed) + 1, ordering: .relaxed)
        }
    }
    func countRefused(_ reason: RefusalReason) {
        refused[reason.index].value.add(1, ordering: .relaxed)
    }
}
