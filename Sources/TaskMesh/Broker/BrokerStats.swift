/// Counters a broker keeps since it started. A snapshot; read it with `Broker.stats`.
public struct BrokerStats: Sendable, Equatable {
    /// Jobs accepted from clients (resubmissions of a known id are not counted again).
    public var accepted: UInt64 = 0
    /// Attempts handed to workers (first runs and retries).
    public var dispatched: UInt64 = 0
    /// Jobs that ended with a worker's result, or as `attemptsExhausted` or `unroutable`.
    public var completed: UInt64 = 0
    public var exhausted: UInt64 = 0
    /// Jobs ended `unroutable` (counted in `completed` too): no live worker had their handler and
    /// labels for `broker.unroutable_timeout`, or before their deadline.
    public var unroutable: UInt64 = 0
    /// Jobs ended `expired` (counted in `completed` too): their deadline passed while they were
    /// queued, so they were never dispatched.
    public var expired: UInt64 = 0
    /// Attempts given to another worker because theirs died, went silent, left or overran the
    /// lease.
    public var requeued: UInt64 = 0
    /// Jobs whose attempt failed with `retry`, held for their backoff and then requeued.
    public var retried: UInt64 = 0
    /// Retries dispatched to another worker than the one whose attempt asked for them.
    public var retriedElsewhere: UInt64 = 0
    /// CANCELs for jobs the broker held: queued ones ended at once, running ones forwarded.
    public var cancelled: UInt64 = 0
    /// Jobs a worker answered `unknownHandler` for after it had stopped advertising that
    /// handler: queued again (same attempt) for a worker that has it.
    public var rerouted: UInt64 = 0
    public var leasesExpired: UInt64 = 0
    /// Times a worker's earned slots were halved because attempts it held overran their lease
    /// (at most once per worker per wake-up).
    public var windowsHalved: UInt64 = 0
    /// Slots of attempts past their lease freed because the worker's heartbeat showed it no
    /// longer held them (lost on the way, or their result was); the others stay taken until
    /// their stale result arrives.
    public var slotsFreed: UInt64 = 0
    public var workersLost: UInt64 = 0
    /// Results from a superseded attempt, or from a worker connection the broker no longer
    /// knows (fenced off and dropped).
    public var staleResults: UInt64 = 0
    /// Resubmissions of a job already queued or running (not run again), and of a job recently
    /// finished (answered from the outcome cache).
    public var duplicatesInFlight: UInt64 = 0
    public var duplicatesAnswered: UInt64 = 0
    /// Submits refused because the queue was full.
    public var rejectedOverloaded: UInt64 = 0
    /// Outcomes whose client was not connected, or stopped reading past its backlog (100,000
    /// results or 256 MiB): kept in the cache for a resubmission.
    public var undeliverable: UInt64 = 0
    /// Invalid messages dropped.
    public var malformed: UInt64 = 0
    /// Jobs held now (queued and running), and workers ready now.
    public var jobs: Int = 0
    public var queued: Int = 0
    public var workers: Int = 0

    /// Peers turned away during the CURVE handshake because their key is on no allowlist (in a
    /// secure mesh; counted per process, and including the start-up self-test's probes).
    public var rejectedPeers: UInt64 = 0

    public init() {}
}

extension BrokerStats: RoleCounters {}
