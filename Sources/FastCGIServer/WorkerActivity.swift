import Synchronization

/// What the workers are doing, for metrics: which are busy with a request,
/// and how many connections the header check refused.
///
/// Each worker writes only its own slot, and slots are separate, padded
/// allocations, so marking a request costs two uncontended atomic stores and
/// workers never bounce a cache line between them. Readers (a metrics
/// scrape) sum the slots.
public final class WorkerActivity: Sendable {
    final class Slot: Sendable {
        let busy = Atomic<Bool>(false)
        // Keeps the next slot's flag off this one's cache line.
        let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    }

    private let slots: [Slot]
    private let refused = Atomic<Int>(0)

    public init(workers: Int) {
        slots = (0..<workers).map { _ in Slot() }
    }

    /// The number of workers.
    public var workers: Int { slots.count }

    /// Workers handling a request right now (a scrape counts itself).
    public var busy: Int { slots.reduce(0) { $0 + ($1.busy.load(ordering: .relaxed) ? 1 : 0) } }

    /// Connections closed by the header check since the start.
    public var refusedConnections: Int { refused.load(ordering: .relaxed) }

    func setBusy(_ worker: Int, _ busy: Bool) { slots[worker].busy.store(busy, ordering: .relaxed) }
    func countRefused() { refused.add(1, ordering: .relaxed) }
}
