public import Logging

/// What a handler knows of the job it runs, beside its payload: who sent it, which attempt this
/// is, when its client stops waiting, a logger that names the job, and a way to report progress.
///
/// Cancellation is Swift task cancellation: a handler's task is cancelled when the job's
/// submitter cancels it, when its deadline passes, and never otherwise. A handler that checks
/// (`Task.isCancelled`, `try Task.checkCancellation()`, or a cancellable `await` such as
/// `Task.sleep`) stops early and frees its slot; one that ignores it keeps the slot until it
/// returns, which the worker counts and logs with the job id. Whatever a cancelled handler
/// returns is dropped.
public struct JobContext: Sendable {
    /// The job as the worker accepted it: the context reads its ids, handler and deadline
    /// there instead of holding copies (a context is made for every job).
    let accepted: JobRunner.Accepted
    let services: JobServices

    /// The job's id, unique among its client's pending jobs.
    public var id: JobID { JobID(bytes: accepted.job.jobID) }
    /// The submitting client's id (its 16 random bytes, for TaskMesh's clients).
    public var clientID: [UInt8] { accepted.job.clientID }
    /// 1 for the first attempt; one higher for each retry or each re-run after a lost worker.
    public var attempt: Int { Int(accepted.job.attempt) }
    /// The handler name the job was sent to.
    public var handler: String { accepted.job.handler }
    /// When the job's client stops waiting, on this worker's monotonic clock (worked out from
    /// the time remaining when the job arrived, so clocks set apart between hosts do not shift
    /// it); nil when it has none. At that instant the handler's task is cancelled.
    public var deadline: ContinuousClock.Instant? { hasDeadline ? localDeadline.continuous : nil }
    var localDeadline: Instant { accepted.deadline }
    var hasDeadline: Bool { accepted.hasDeadline }

    init(_ accepted: JobRunner.Accepted, services: JobServices) {
        self.accepted = accepted
        self.services = services
    }

    /// The worker's logger with the job's metadata: `job`, `client`, `handler`, `attempt`.
    public var logger: Logger {
        var logger = services.logger
        logger[metadataKey: "job"] = "\(id)"
        logger[metadataKey: "client"] = "\(ExecutionLog.hex(clientID))"
        logger[metadataKey: "handler"] = "\(handler)"
        logger[metadataKey: "attempt"] = "\(attempt)"
        return logger
    }

    /// Reports that `completed` of `total` units are done, with an optional `detail` of up to
    /// 4 KiB (a longer one is dropped and the update goes without it). Updates are coalesced:
    /// the client sees at most about four per second per job, each the latest at the time, and
    /// always the last one before the job's result. Cheap enough to call in a tight loop; never
    /// blocks; dropped once the handler has returned.
    public func progress(_ completed: Int, of total: Int, detail: [UInt8] = []) {
        services.progress.report(ProgressMessage(
            attempt: accepted.job.attempt, clientID: accepted.job.clientID, jobID: accepted.job.jobID,
            completed: UInt64(clamping: completed), total: UInt64(clamping: total),
            detail: detail.count <= ProgressMessage.maxDetail ? detail : []))
    }

    /// Whether the job was cancelled (by its submitter, or at its deadline).
    public var isCancelled: Bool { Task.isCancelled }
}

/// What a worker's jobs share: its logger and its progress board.
final class JobServices: Sendable {
    let logger: Logger
    let progress: ProgressBoard

    init(logger: Logger, progress: ProgressBoard) {
        self.logger = logger
        self.progress = progress
    }
}
