public import Foundation

/// A job as a handler sees it: its payload and its `JobContext`.
public struct Job: Sendable {
    /// Who sent it, which attempt this is, its deadline, a logger and a progress reporter.
    public let context: JobContext

    /// The job's input, as the client sent it.
    public var payload: [UInt8] { context.accepted.job.payload }
    /// The job's own retry policy (`JobOptions.retry`), which overrides its handler's.
    var retryOverride: RetryOverride? { context.accepted.job.retry }

    /// The job's id, unique among the submitting client's pending jobs.
    public var id: JobID { context.id }
    /// The handler name the job was sent to.
    public var handler: String { context.handler }
    /// 1 for the first attempt; higher for a retry, or a re-run after its worker was lost.
    public var attempt: Int { context.attempt }

    /// When the client stops waiting, by this worker's wall clock (worked out from the time
    /// remaining when the job arrived, so a clock set apart from the client's does not shift
    /// it); nil when it set none. Worked out on each read; `context.deadline` is the same
    /// instant on the monotonic clock.
    public var deadline: Date? {
        context.hasDeadline ? Date(timeIntervalSinceNow: Instant.current.duration(to: context.localDeadline) / .seconds(1)) : nil
    }

    init(_ context: JobContext) {
        self.context = context
    }
}
