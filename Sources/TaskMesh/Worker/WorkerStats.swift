/// Counters a worker keeps since it started. A snapshot; read it with `Worker.stats`.
public struct WorkerStats: Sendable, Equatable {
    /// Jobs taken off the socket.
    public var received: UInt64 = 0
    /// Jobs whose handler returned, threw, or rejected them.
    public var succeeded: UInt64 = 0
    public var failed: UInt64 = 0
    public var rejected: UInt64 = 0
    /// Jobs naming a handler this worker does not have.
    public var unknownHandler: UInt64 = 0
    /// Messages that were not valid jobs.
    public var malformed: UInt64 = 0
    /// Jobs skipped because their deadline had already passed when a runner was free.
    public var expired: UInt64 = 0
    /// Running jobs whose handler was cancelled at their deadline.
    public var cancelledAtDeadline: UInt64 = 0
    /// Jobs cancelled by their submitter (CANCEL): queued ones removed, running ones cancelled.
    public var cancelled: UInt64 = 0
    /// Cancelled handlers still running a second after their cancellation: they ignore it and
    /// keep their slot until they return.
    public var ignoringCancellation: UInt64 = 0
    /// Failed jobs answered `retry`: their policy runs them again.
    public var retried: UInt64 = 0
    /// Jobs handed back unstarted while stopping (their clients send them elsewhere).
    public var declined: UInt64 = 0
    /// Jobs running now.
    public var inFlight: Int = 0

    /// Peers turned away during the CURVE handshake because their key is on no allowlist (in a
    /// secure mesh; counted per process, and including the start-up self-test's probes).
    public var rejectedPeers: UInt64 = 0

    public init() {}
}

extension WorkerStats: RoleCounters {}
