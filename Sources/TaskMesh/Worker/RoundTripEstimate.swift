/// The round trip between a reliable-mode worker and its broker: each HEARTBEAT the worker sends
/// carries a probe (its clock, in microseconds), which the broker sends back at once; the time
/// between them is a sample. The estimate is the least sample of the `window` before the latest
/// one: a probe that waited behind other messages on the way does not
/// raise it, and a queue that builds for less than the window does not pass for a slower link.
///
/// A sample counts only if the worker ran dry while its probe was out (it had nothing unread and
/// no job waiting for a runner) and has no job waiting when the answer is read. Otherwise the
/// answer came in behind jobs: it timed the queue the worker's own credit let the broker build,
/// and counting it would raise the credit, and so the queue, in turn. A worker with work queued
/// needs no more credit anyway; one behind a slow link runs dry between its jobs' arrivals.
struct RoundTripEstimate {
    /// How long a sample counts.
    static let window: Duration = .seconds(30)
    /// The most samples kept (a heartbeat interval of 10 ms at the least gives more in a window).
    static let samples = 64
    private var kept: [(at: Instant, wait: Duration)] = []
    /// Whether the worker ran dry since it sent its last probe.
    private(set) var ranDrySinceProbe = false

    /// The least recent sample; nil before the first.
    var estimate: Duration? { kept.lazy.map(\.wait).min() }

    /// The probe for a heartbeat sent at `now`: the clock in microseconds, wrapping.
    static func probe(at now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / 1000)
    }

    /// The probe for a heartbeat about to be sent at `now`; the worker has not run dry since.
    mutating func sendingProbe(at now: Instant) -> UInt32 {
        ranDrySinceProbe = false
        return Self.probe(at: now)
    }

    /// The worker found nothing unread from the broker and no job waiting for a runner.
    mutating func ranDry() {
        ranDrySinceProbe = true
    }

    /// The broker sent `echo` back, read at `now` with `jobsWaiting` jobs accepted and not yet
    /// started: a sample if the worker ran dry since the probe and no job waits (else the answer
    /// came in behind jobs), and if it is a probe of the last minute (not a broker answering with
    /// something else). True if it counted.
    @discardableResult
    mutating func echoed(_ echo: UInt32, at now: Instant, jobsWaiting: Int) -> Bool {
        let micros = Self.probe(at: now) &- echo  // wraps safely across the counter's overflow
        guard ranDrySinceProbe, jobsWaiting == 0, micros < 60_000_000 else { return false }
        kept.removeAll { $0.at.duration(to: now) > Self.window }
        if kept.count == Self.samples { kept.removeFirst() }
        kept.append((now, .microseconds(Int64(micros))))
        return true
    }
}
