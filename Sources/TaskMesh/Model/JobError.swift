/// The ways a job can end other than with its result. Every submitted job ends with exactly one
/// outcome at its client: its result or one `JobError`.
///
/// The set of codes can grow: switch over `code` with a `default` branch.
///
/// `JobError` is `Codable` (code as its name, message, attempts, error type), so a service can
/// store or forward it and read it back unchanged.
public struct JobError: Error, Hashable, Sendable, CustomStringConvertible, Codable {
    public enum Code: String, Hashable, Sendable, CustomStringConvertible, Codable {
        /// No worker has a handler of that name. Not retried.
        case unknownHandler
        /// The handler's validate step refused the job; `message` is its reason. Not retried.
        case rejected
        /// The handler threw; `message` is its error and `errorType` the error's type name. With
        /// a retry policy, every attempt allowed failed and this is the last one's error.
        case handlerFailed
        /// The deadline passed before a result arrived. The job may or may not have run: a
        /// timeout is an unknown outcome, never a success or a failure.
        case timedOut
        /// The payload (or a result) is larger than the topology's `limits.max_payload`.
        case payloadTooLarge
        /// No live worker could take the job: none was known before its deadline, or (direct
        /// mode) none has its handler or every label it requires, or (reliable mode) none
        /// with them joined within `broker.unroutable_timeout`. `message` names the handler or
        /// labels missing and the handlers the mesh has. The job never ran.
        case noWorkers
        /// The client was closed before the job ended, or was already closed at submit.
        case meshClosed
        /// The client already has `client.max_pending` jobs pending, or (reliable mode) the
        /// broker's queue is at `broker.queue_limit`; try again later.
        case overloaded
        /// The job was cancelled by its submitter; a result that arrives later is dropped.
        /// A running handler is cancelled (Swift task cancellation) and a queued job never
        /// starts; a cancelled job is not retried.
        case cancelled
        /// A job with the same id is already pending at this client.
        case duplicateJobID
        /// The worker could not read the job (a protocol mismatch); `message` says why.
        case badRequest
        /// The job's id or handler name is not acceptable (empty or over 255 bytes).
        case invalidJob
        /// Reliable mode: every allowed attempt (`broker.max_attempts`) ended without a result,
        /// for example because the job crashed or hung each worker it ran on; `message` names the
        /// last cause. Other jobs are unaffected.
        case attemptsExhausted
        /// A typed result could not be decoded; `message` says why.
        case decodingFailed

        public var description: String { rawValue }

    }

    /// What happened.
    public let code: Code
    /// Details for people: the handler's message, the name that was unknown, the limit exceeded.
    public let message: String
    /// How many attempts ran (reliable mode, or a job with a retry policy); 0 when not known.
    public let attempts: Int
    /// For `handlerFailed`: the Swift type name of the error the handler threw (as the worker
    /// reported it), e.g. `ImageError`; nil otherwise.
    public let errorType: String?

    public init(_ code: Code, _ message: String = "", attempts: Int = 0, errorType: String? = nil) {
        self.code = code
        self.message = message
        self.attempts = attempts
        self.errorType = errorType
    }

    public var description: String {
        var text = "JobError.\(code)"
        if let errorType { text += " (\(errorType))" }
        if !message.isEmpty { text += ": \(message)" }
        if attempts > 1 { text += " [after \(attempts) attempts]" }
        return text
    }

    /// The same error, reporting `attempts` attempts.
    func after(attempts: Int) -> JobError {
        JobError(code, message, attempts: attempts, errorType: errorType)
    }
}

/// Thrown by a handler's validate step to reject a job before it runs; the client receives
/// `JobError.rejected` with this message.
public struct JobRejection: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
