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

    /// Ends the job with `JobError.cancelled` now, unless it already ended. A job already sent
    /// may still run on its worker (direct mode cannot recall it); its result is then dropped.
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
