extension JobRunner {
    /// A job accepted to run here, with its handler, from intake to its answer: what a runner
    /// takes, what the handler's `JobContext` reads, and what its completion names. A class, so
    /// that each of those steps passes one reference instead of copying the job's ids, handler
    /// name and payload (each a reference count of its own) again and again.
    final class Accepted: Sendable {
        let job: JobMessage
        let run: Handlers.Run
        /// Its deadline by this host's monotonic clock, fixed when the job was read
        /// (`WireDeadline.local`: relative form exactly, absolute form plus its 1 s tolerance);
        /// meaningful only with `hasDeadline`. A runner skips the job unstarted once it has
        /// passed.
        let deadline: Instant
        let hasDeadline: Bool
        /// Whether CANCEL and its deadline can interrupt it once it runs: false for a handler
        /// measured to finish within microseconds (`HandlerTimings.isFast`), whose jobs end
        /// before either could act, and whose runners then do no bookkeeping per job.
        let interruptible: Bool

        init(job: JobMessage, run: @escaping Handlers.Run, deadline: Instant?, interruptible: Bool = true) {
            self.job = job
            self.run = run
            self.hasDeadline = deadline != nil
            self.deadline = deadline ?? JobRunner.noDeadline
            self.interruptible = interruptible
        }
    }

    /// What a runner hands back to the loop: the job, its answer's status and body, and how it
    /// came about. A struct with a tag rather than an enum with payloads: one is made, queued
    /// and taken per job, and a multi-payload enum is copied and destroyed through outlined
    /// value-witness code.
    struct Completion: Sendable {
        enum Kind: UInt8, Sendable {
            /// The handler ran, for `elapsed`.
            case ran
            /// Skipped unstarted: its deadline had passed. The answer (status `expired`) frees
            /// the job's slot at a broker.
            case skipped
            /// Its handler was cancelled by CANCEL and has returned; the answer is `cancelled`.
            case cancelled
            /// CANCEL came while a runner was taking it: it never started; the answer is `cancelled`.
            case cancelledOnArrival
            /// Its handler was cancelled at its deadline and has returned; the answer is `expired`.
            case cancelledAtDeadline
        }

        let accepted: Accepted
        let status: ResultStatus
        let body: [UInt8]
        let kind: Kind
        var elapsed: Duration = .zero

        init(_ accepted: Accepted, _ status: ResultStatus, _ body: [UInt8], kind: Kind, elapsed: Duration = .zero) {
            self.accepted = accepted
            self.status = status
            self.body = body
            self.kind = kind
            self.elapsed = elapsed
        }
    }

    /// The answer's body for a job cancelled before it started.
    static let cancelledBeforeStart = Array("cancelled by its submitter before it started".utf8)

    /// What `Accepted.deadline` holds for a job without one.
    static let noDeadline = Instant.current
}
