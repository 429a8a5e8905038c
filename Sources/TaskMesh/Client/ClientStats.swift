/// Counters a client keeps since it started. A snapshot; read it with `Client.stats`.
public struct ClientStats: Sendable, Equatable {
    /// Jobs accepted by `enqueue`/`submit`.
    public var submitted: UInt64 = 0
    /// Jobs that ended with their result.
    public var succeeded: UInt64 = 0
    /// Jobs that ended with a `JobError` other than `timedOut`.
    public var failed: UInt64 = 0
    /// Jobs that ended with `timedOut` (or `noWorkers`).
    public var timedOut: UInt64 = 0
    /// Results that arrived after their job had ended (late) or a second time (duplicate):
    /// dropped, never surfaced.
    public var droppedLateOrDuplicate: UInt64 = 0
    /// Messages from the sink that were not valid: dropped.
    public var malformed: UInt64 = 0
    /// Jobs a stopping worker handed back unstarted, sent again to another worker (also jobs a
    /// worker answered `unknownHandler` for a handler it had just removed).
    public var resent: UInt64 = 0
    /// CANCELs sent for jobs cancelled after they left this client.
    public var cancelsSent: UInt64 = 0
    /// Direct mode: attempts sent again after a `retry` answer.
    public var retried: UInt64 = 0
    /// Direct mode: jobs ended `noWorkers` at once because no live worker had their handler
    /// or labels (counted in `timedOut` too).
    public var unroutable: UInt64 = 0
    /// Workers this client currently sends to.
    public var workers: Int = 0
    /// Jobs pending now (waiting to be sent or awaiting their outcome).
    public var pending: Int = 0

    public init() {}
}
