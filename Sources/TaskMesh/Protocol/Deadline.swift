/// The `deadline` field of JOB and of each JOBS entry (docs/PROTOCOL.md, section 4): a `u64` in
/// one of two forms.
///
/// - **Relative** (top bit set): `0x8000_0000_0000_0000 | ms`, "`ms` milliseconds remain, counted
///   from when the receiver got the message". Every sender in TaskMesh writes this form; it needs
///   no agreement between clocks.
/// - **Absolute** (top bit clear, not 0): milliseconds since the Unix epoch by the sender's wall
///   clock, the form of earlier revisions; still honoured on receipt.
/// - `0`: no deadline.
///
/// Each receiver turns the field into a deadline on its own monotonic clock (`Instant`) once, at
/// receipt, and keeps that; a hop that forwards the job (the broker) writes the time remaining
/// then, so queueing time is counted at every hop and transit time at none.
enum WireDeadline {
    /// The bit that marks the relative form.
    static let relativeFlag: UInt64 = 1 << 63
    /// The most milliseconds the relative form can carry; longer times are written as this.
    static let maxRemaining: UInt64 = relativeFlag - 1
    /// How long past an absolute deadline a worker still runs the job: it absorbs differences
    /// between the sender's wall clock and the receiver's. The relative form needs none.
    static let absoluteTolerance: Duration = .seconds(1)

    /// The relative form of `remaining` (clamped to 0 when negative, and to `maxRemaining`).
    /// Never 0: even "no time left" reads as a deadline, not as none.
    static func relative(_ remaining: Duration) -> UInt64 {
        let ms = remaining.milliseconds  // runs per job: one division by a constant
        return relativeFlag | (ms <= 0 ? 0 : UInt64(ms) >= maxRemaining ? maxRemaining : UInt64(ms))
    }

    /// The relative form of the time from `now` to `deadline`; 0 (none) when `deadline` is nil.
    static func relative(until deadline: Instant?, now: Instant) -> UInt64 {
        guard let deadline else { return 0 }
        return relative(now.duration(to: deadline))
    }

    /// Whether `raw` is in the relative form.
    static func isRelative(_ raw: UInt64) -> Bool { raw & relativeFlag != 0 }

    /// The receiver's monotonic deadline for a field `raw` received at `now`; nil for none (0).
    /// An absolute deadline is placed by `wallClock` (this host's milliseconds since the Unix
    /// epoch, read only for that form) and pushed back by `absoluteTolerance` when `tolerant`.
    /// Total: any 64-bit value gives an answer (far-off values clamp to about 146 years).
    static func local(_ raw: UInt64, receivedAt now: Instant, wallClock: @autoclosure () -> UInt64 = wallClockMilliseconds(),
                      tolerant: Bool = true) -> Instant? {
        if raw == 0 { return nil }
        let cap: UInt64 = 1 << 52  // ms: keeps every Duration below well inside Int64 seconds
        if isRelative(raw) {
            return now + .milliseconds(Int64(min(raw & maxRemaining, cap)))
        }
        let wall = wallClock()
        let local: Instant
        if raw >= wall {
            local = now + .milliseconds(Int64(min(raw - wall, cap)))
        } else {
            local = now - .milliseconds(Int64(min(wall - raw, cap)))
        }
        return tolerant ? local + absoluteTolerance : local
    }
}
