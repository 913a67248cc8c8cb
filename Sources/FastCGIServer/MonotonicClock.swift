import Glibc

/// Seconds on the monotonic clock: durations that a wall-clock step cannot bend.
package enum MonotonicClock {
    package static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Milliseconds since `started` (a `now()`), to 0.1 ms: what log lines show.
    package static func milliseconds(since started: Double) -> Double {
        ((now() - started) * 10_000).rounded() / 10
    }
}
