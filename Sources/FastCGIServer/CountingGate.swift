import Synchronization

/// A count with a ceiling, taken and given back without a lock: the open
/// connections (`--max-connections`) and, in the app, the calls waiting on
/// MagicBell (the admin and api-mode gates). Entering over the ceiling fails
/// at once; it never waits.
package final class CountingGate: Sendable {
    private let inside = Atomic<Int>(0)
    package let limit: Int

    package init(limit: Int) { self.limit = limit }

    /// How many are inside now.
    package var count: Int { inside.load(ordering: .relaxed) }

    /// One more inside, unless the gate is full.
    package func tryEnter() -> Bool {
        var current = inside.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, found) = inside.compareExchange(expected: current, desired: current + 1, ordering: .acquiring)
            if exchanged { return true }
            current = found
        }
        return false
    }

    package func leave() { inside.subtract(1, ordering: .releasing) }
}
