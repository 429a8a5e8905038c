#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reading of this host's monotonic clock (`CLOCK_MONOTONIC`), for deadlines, leases and
/// heartbeats: immune to wall-clock jumps, meaningless on another host.
///
/// A plain count of nanoseconds rather than `ContinuousClock.Instant`: the standard library's
/// instant is a resilient type, so every struct holding one (a pending job, a broker slot, a job
/// waiting for a runner) would be copied and destroyed through value-witness calls, on paths
/// that run once per job. Differences convert to and from `Duration`, saturating at the range
/// of `Int64` nanoseconds (about 292 years).
struct Instant: Comparable, Hashable, Sendable {
    /// Nanoseconds since the clock's arbitrary origin (the host's boot, on Linux).
    let nanoseconds: Int64

    init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// Now.
    static var current: Instant {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Instant(nanoseconds: Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec))
    }

    /// This instant as the standard library's continuous clock would read it, for public API
    /// (`JobContext.deadline`): its distance from now carried over to `ContinuousClock.now`.
    var continuous: ContinuousClock.Instant {
        ContinuousClock.now.advanced(by: Instant.current.duration(to: self))
    }

    func advanced(by duration: Duration) -> Instant {
        Instant(nanoseconds: nanoseconds.addingSaturating(duration.saturatingNanoseconds))
    }

    func duration(to other: Instant) -> Duration {
        .nanoseconds(other.nanoseconds.subtractingSaturating(nanoseconds))
    }

    static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    static func + (instant: Instant, duration: Duration) -> Instant { instant.advanced(by: duration) }
    static func - (instant: Instant, duration: Duration) -> Instant {
        Instant(nanoseconds: instant.nanoseconds.subtractingSaturating(duration.saturatingNanoseconds))
    }
    static func - (a: Instant, b: Instant) -> Duration { b.duration(to: a) }
    static func += (instant: inout Instant, duration: Duration) { instant = instant + duration }
}

extension Duration {
    /// The duration in whole milliseconds (toward zero), clamped to the range of `Int64`.
    var milliseconds: Int64 {
        Int64(clamping: attoseconds / 1_000_000_000_000_000)
    }

    /// The duration in nanoseconds, as a floating-point number (for means and ratios).
    var nanoseconds: Double {
        Double(saturatingNanoseconds)
    }

    /// The duration in whole nanoseconds (toward zero), clamped to the range of `Int64`. From
    /// the 128-bit attosecond count: a division by a constant, where `components` costs several
    /// times more (instants are moved by durations per job).
    var saturatingNanoseconds: Int64 {
        Int64(clamping: attoseconds / 1_000_000_000)
    }
}

extension Int64 {
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : sum
    }

    func subtractingSaturating(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }
}
