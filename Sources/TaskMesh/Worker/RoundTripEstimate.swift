/// The round trip between a reliable-mode worker and its broker: each HEARTBEAT the worker sends
/// carries a probe (its clock, in microseconds), which the broker sends back at once; the time
/// between them is a sample. The estimate is the least of the last `samples` samples: a probe
/// that waited behind other messages on the way does not raise it.
struct RoundTripEstimate {
    static let samples = 8
    private var waits: [Duration] = []
    private var oldest = 0

    /// The least of the recent samples; nil before the first.
    var estimate: Duration? { waits.min() }

    /// The probe for a heartbeat sent at `now`: the clock in microseconds, wrapping.
    static func probe(at now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / 1000)
    }

    /// The broker sent `echo` back, read at `now`: a sample, unless it is not a probe of the last
    /// minute (a broker answering with something else).
    mutating func echoed(_ echo: UInt32, at now: Instant) {
        let micros = Self.probe(at: now) &- echo  // wraps safely across the counter's overflow
        guard micros < 60_000_000 else { return }
        let wait = Duration.microseconds(Int64(micros))
        if waits.count < Self.samples {
            waits.append(wait)
        } else {
            waits[oldest] = wait
            oldest = (oldest + 1) % Self.samples
        }
    }
}
