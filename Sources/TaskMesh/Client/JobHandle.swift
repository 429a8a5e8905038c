/// A submitted job: a future of its outcome that can be awaited later, by several tasks, or
/// cancelled.
public struct JobHandle<Output: Sendable>: Sendable {
    /// The job's id.
    public let id: JobID
    let promise: Promise
    let core: ClientCore
    let decode: @Sendable ([UInt8]) throws(JobError) -> Output

    /// Waits for the job's single outcome: its result, or the `JobError` it ended with.
    /// Cancelling the awaiting task does not cancel the job; call `cancel()` for that.
    ///
    /// When this job is its client's only pending one, the caller first checks for the outcome
    /// on its own thread for up to `client.spin_wait` (yielding the CPU between checks), then
    /// suspends.
    public func value() async throws(JobError) -> Output {
        try decode(try await promise.outcome(spinningFor: core.spinBudget).get())
    }

    /// The job's progress as its handler reports it (`JobContext.progress`): the latest update
    /// so far first, then each later one in order; the sequence ends when the job ends, after
    /// the last update the handler reported (coalesced: a few per second at most). Each call
    /// gives a new sequence; a job whose handler reports nothing yields nothing.
    public var progress: AsyncStream<JobProgress> { promise.progress.stream() }

    /// Ends the job with `JobError.cancelled` now, unless it already ended, and tells the mesh:
    /// a job not started never runs; a running job's handler is cancelled (Swift task
    /// cancellation) on its worker, in direct mode by a CANCEL to that worker, in reliable mode
    /// through the broker; a cancelled job is never retried. A result that arrives anyway is
    /// dropped.
    public func cancel() {
        if promise.complete(.failure(JobError(.cancelled, "cancelled by its submitter"))) {
            core.cancel(id.bytes)
        }
    }

    /// Whether the job has ended.
    public var isFinished: Bool { promise.isComplete }
}

/// One job's outcome from `Client.batch`.
public struct BatchOutcome: Sendable {
    /// The position of the job's payload in the batch.
    public let index: Int
    /// The job's result or the error it ended with.
    public let result: Result<[UInt8], JobError>
}
