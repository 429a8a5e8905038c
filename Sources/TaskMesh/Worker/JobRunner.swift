import DequeModule
import Foundation
import Logging
import Synchronization
import ZMQ

/// Runs the jobs a worker's loop receives, in either mode: decodes them, answers at once what
/// needs no handler (bad request, unknown handler, declined while stopping), queues the rest for
/// `concurrency` long-lived runner tasks, and queues their RESULTs until the loop's socket takes
/// them. Owned by the loop thread; runners report back through `completions` and `signal`.
///
/// Runners take job after job from a shared queue, and wake the loop only when its completion
/// queue was empty, so under load jobs cost no thread wake-ups of their own. The jobs read in one
/// wake-up, when a runner is idle and they all name a handler measured to finish within
/// microseconds (`HandlerTimings`), run on the loop thread itself, one after another in one task
/// started with `Task.immediate`, for at most `inlineBudget`; the rest go to the runners, and so
/// do the jobs after one that suspends (it goes on on the executor like any task). They cross no
/// thread at the worker. Either way at most `concurrency` handlers run at once.
final class JobRunner {
    /// What the runner tasks share with each other and with the loop.
    final class Runners: Sendable {
        let queue = RunQueue<Accepted>()
        let completions = Shared<[Completion]>([])
        let signal: Signal
        let limit: Int
        /// Told of each job before its handler runs (the execution log, when one is kept).
        let startObserver: (any JobStartObserver)?
        let services: JobServices
        let running: RunningJobs
        /// How long jobs may run inline on the loop thread per wake-up (`JobRunner.inlineBudget`).
        let inlineBudget: Duration

        init(count: Int, signal: Signal, limit: Int, startObserver: (any JobStartObserver)?, services: JobServices, inlineBudget: Duration) {
            self.inlineBudget = inlineBudget
            self.signal = signal
            self.limit = limit
            self.startObserver = startObserver
            self.services = services
            self.running = RunningJobs(runners: count)
        }
    }

    var handlers: Handlers
    /// Messages read so far, and the last deadline field worked out (in which message, to what).
    var messagesRead: UInt64 = 0
    var lastDeadline: (raw: UInt64, message: UInt64, local: Instant?) = (0, 0, nil)
    /// Where `Worker.update(handlers:)` leaves a new handler table for the loop to take.
    private let handlerUpdates: Shared<Handlers?>
    /// This worker's labels (`worker.labels`).
    private let labels: [String]
    let runners: Runners
    /// `runners.services.progress`, held directly: every job's end looks at it.
    let progressBoard: ProgressBoard
    var queue: RunQueue<Accepted> { runners.queue }
    var timings = HandlerTimings()
    private let published: Shared<WorkerStats>
    /// Secure direct mode: a JOB's client id must be the key its sender proved.
    let checksSender: Bool
    let logger: Logger

    var stats = WorkerStats()
    /// Jobs accepted to run and not yet finished: queued for a runner or running.
    var inFlight = 0
    /// What waits for the loop's socket: results, and progress updates ahead of them.
    var outbox = ResultOutbox()
    /// When the loop should next look at running jobs' deadlines and at progress due.
    var nextDeadlineSweep: Instant?
    var nextProgress: Instant?
    /// When `housekeeping(at:)` next has work; nil: not before something arrives.
    var nextHousekeeping: Instant?
    /// Jobs accepted since the last `startAccepted()`.
    var accepted: [Accepted] = []
    /// The handler found last: consecutive jobs mostly name the same one, and comparing its
    /// name costs less than hashing it per job.
    var lastFound: (name: String, entry: Handlers.Registered)?
    /// Whether `lastFound`'s handler counted as fast when the message `message` was read.
    var lastFoundFast: (message: UInt64, fast: Bool) = (0, false)

    /// How long a cancelled handler may take to return before it is counted as ignoring it.
    static let cancellationGrace: Duration = .seconds(1)
    /// How often the loop looks at running jobs' deadlines while jobs run.
    static let deadlineSweep: Duration = .milliseconds(50)

    init(handlers: Handlers, labels: Set<String> = [], handlerUpdates: Shared<Handlers?> = Shared(nil), concurrency: Int, limit: Int,
         signal: Signal, startObserver: (any JobStartObserver)? = nil, checksSender: Bool = false, published: Shared<WorkerStats>, logger: Logger,
         inlineBudget: Duration = JobRunner.inlineBudget) {
        self.published = published
        self.checksSender = checksSender
        self.handlers = handlers
        self.handlerUpdates = handlerUpdates
        self.labels = labels.sorted()
        self.logger = logger
        let count = max(1, concurrency)
        let services = JobServices(logger: logger, progress: ProgressBoard(wake: { [signal] in signal.notify() }))
        runners = Runners(count: count, signal: signal, limit: limit, startObserver: startObserver, services: services,
                          inlineBudget: inlineBudget)
        progressBoard = services.progress
        for slot in 0..<count { Self.startRunner(runners, slot: slot) }
    }

    /// One runner, serving `slot`: takes job after job until the queue closes, or until a job
    /// of its was cancelled (its task stays cancelled): then a fresh runner takes the slot.
    private static func startRunner(_ runners: Runners, slot: Int) {
        let place = runners.running.slots[slot]
        let task = Task {
            while var accepted = await runners.queue.next() {
                if accepted.interruptible { place.begin(accepted) }
                // While jobs are queued the runner goes from one to the next without suspending,
                // and one clock reading ends a job and starts the next.
                var start = Instant.current
                while true {
                    let (completion, end) = await execute(accepted, startedAt: start, runners)
                    if accepted.interruptible, let reason = place.idle() {
                        report(stopped(accepted, reason, ranFor: end - start), to: runners)
                        startRunner(runners, slot: slot)
                        return
                    }
                    report(completion, to: runners)
                    guard let next = runners.queue.poll() else { break }
                    if next.interruptible { place.begin(next) }
                    accepted = next
                    start = end
                }
            }
        }
        place.attach(task)
    }

    private static func stopped(_ accepted: Accepted, _ reason: RunningJobs.Reason, ranFor elapsed: Duration) -> Completion {
        reason == .cancelled
            ? Completion(accepted, .cancelled, Array("cancelled by its submitter while running".utf8), kind: .cancelled)
            : Completion(accepted, .expired, Array("cancelled at its deadline after running \(elapsed)".utf8), kind: .cancelledAtDeadline)
    }

    /// Hands a completion to the loop, waking it only when its queue was empty: it takes the
    /// whole queue per wake-up.
    static func report(_ completion: Completion, to runners: Runners) {
        let wasEmpty = runners.completions.update { queue -> Bool in
            defer { queue.append(completion) }
            return queue.isEmpty
        }
        if wasEmpty { runners.signal.notify() }
    }

    deinit { queue.close() }

    /// Runs one job that a runner took at `start`; returns its completion and when it ended.
    nonisolated(nonsending) static func execute(_ accepted: Accepted, startedAt start: Instant, _ runners: Runners) async -> (Completion, ended: Instant) {
        if accepted.interruptible && runners.running.takeCancelOnArrival(clientID: accepted.job.clientID, jobID: accepted.job.jobID) {
            return (Completion(accepted, .cancelled, Self.cancelledBeforeStart, kind: .cancelledOnArrival), start)
        }
        if accepted.hasDeadline && start > accepted.deadline {
            return (Completion(accepted, .expired, Self.skippedBody, kind: .skipped), start)
        }
        runners.startObserver?.jobStarting(accepted.job)
        var outcome = await accepted.run(Job(JobContext(accepted, services: runners.services)))
        let end = Instant.current
        if outcome.body.count > runners.limit {
            outcome = HandlerOutcome(.failed, Array("the result of \(outcome.body.count) bytes exceeds limits.max_payload (\(runners.limit) bytes)".utf8))
        }
        return (Completion(accepted, outcome.status, outcome.body, kind: .ran, elapsed: end - start), end)
    }

    /// The answer's body for a job skipped unstarted.
    static let skippedBody = Array("skipped unstarted: its deadline passed before a runner was free".utf8)

    var hasResultsToSend: Bool { !outbox.isEmpty }

    /// Whether jobs of `handler` may run on the loop thread now (`HandlerTimings.isFast`).
    func runsInline(_ handler: String) -> Bool { timings.isFast(handler) }

    /// Records a job time for `handler` as if a job had taken `elapsed`: lets tests of what
    /// follows a measurement set it up without depending on how fast the machine is.
    func recordTiming(_ handler: String, _ elapsed: Duration) { timings.record(handler, elapsed) }
    /// Runners waiting for a job.
    var idleRunners: Int { queue.idleRunners }

    /// Jobs ended so far, and their recent mean time (nil until a few ended).
    var jobsTimed: Int { timings.jobsRecorded }
    /// Jobs ended so far that ran longer than `HandlerTimings.slowJob`.
    var slowJobs: Int { timings.slowJobsRecorded }
    var meanJobDuration: Duration? { timings.meanJobDuration }
    /// The payload size of recently accepted jobs: their plain mean over the first 64, then
    /// exponentially weighted (recent jobs weigh 1/64).
    var meanPayloadBytes: Double = 0
    var payloadsSeen = 0

    /// Jobs accepted and not yet answered on the wire: running, waiting for a runner, or done
    /// with a result the socket has not taken yet. A loop that bounds this bounds the worker's
    /// memory, and passes back-pressure from a slow sink on to the clients.
    var unanswered: Int { inFlight + outbox.resultCount }

    /// Jobs accepted that no runner has started yet.
    var waitingJobs: Int { accepted.count + queue.count }

    /// What the loop advertises (ANNOUNCE, READY): the handler names and labels.
    var capabilities: Capabilities { Capabilities(handlers: handlers.names, labels: labels) }

    /// Takes a handler table left by `Worker.update(handlers:)`; true when there was one (the
    /// loop then advertises the new capabilities at once). Jobs already accepted keep the
    /// handler they were accepted with; later jobs for a removed handler are answered
    /// `unknownHandler` (clients stop sending them once they hear the new list).
    func applyHandlerUpdate() -> Bool {
        guard let next = handlerUpdates.update({ pending -> Handlers? in
            defer { pending = nil }
            return pending
        }) else { return false }
        handlers = next
        lastFound = nil
        return true
    }

    /// Starts the jobs accepted since the last call: jobs of a fast handler while a runner is
    /// idle inline, anything else handed to the runners in one batch.
    func startAccepted() {
        guard !accepted.isEmpty else { return }
        let batch = accepted
        accepted.removeAll(keepingCapacity: true)
        // Jobs of microseconds while a runner is idle: the case where hand-offs to and from the
        // runners cost more than the jobs. The idle runner sits out while they run, so the
        // concurrency bound holds.
        if batch.count <= Self.inlineBatch, allFast(batch), let runner = queue.borrowIdleRunner() {
            runInline(batch, borrowing: runner)
            return
        }
        queue.push(batch)
    }

    /// The most jobs of one wake-up that may run on the loop thread, and for how long at most
    /// they hold it up (reading, sending, heartbeats); what the budget leaves goes to the runners.
    static let inlineBatch = 256
    static let inlineBudget: Duration = .microseconds(200)

    /// Whether every job names one handler, measured fast.
    private func allFast(_ batch: [Accepted]) -> Bool {
        let handler = batch[0].job.handler
        return timings.isFast(handler) && batch.allSatisfy { $0.job.handler == handler }
    }

    /// Stops the runners once their current job ends; queued jobs are handed back first.
    func close() {
        declineQueued()
        queue.close()
    }

    /// Makes the counters, with the jobs running now, visible to `Worker.stats`.
    func publishStats() {
        var snapshot = stats
        snapshot.inFlight = inFlight
        published.publish(snapshot)
    }

    /// Takes the results of handlers that finished since the last call.
    func collectCompletions() {
        let done = runners.completions.update { queue -> [Completion] in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        for completion in done { absorb(completion) }
    }

    /// Ends a started job: counts it and queues its result, behind its last progress update.
    func absorb(_ completion: Completion) {
        inFlight -= 1
        let job = completion.accepted.job
        runners.running.jobEnded(clientID: job.clientID, jobID: job.jobID)
        let answer = ResultMessage(status: completion.status, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: completion.body)
        switch completion.kind {
        case .skipped:
            stats.expired += 1
            if stats.expired == 1 || stats.expired.isMultiple(of: 1000) {
                logger.warning("skipped jobs whose deadline had passed (a backlog; or, for an old client's wall-clock deadline, a clock ahead of that client's)",
                               metadata: ["expired": "\(stats.expired)", "job": "\(JobID(bytes: job.jobID))"])
            }
            outbox.append(answer)
            return
        case .cancelledOnArrival:
            stats.cancelled += 1
        case .cancelled, .cancelledAtDeadline:
            break
        case .ran:
            timings.record(job.handler, completion.elapsed)
            switch completion.status {
            case .ok: stats.succeeded += 1
            case .rejected: stats.rejected += 1
            case .retry: stats.retried += 1
            default: stats.failed += 1
            }
        }
        queueLastProgress(of: answer)
        outbox.append(answer)
    }

    func reply(_ status: ResultStatus, attempt: UInt16, clientID: [UInt8], jobID: [UInt8], body: [UInt8]) {
        outbox.append(ResultMessage(status: status, attempt: attempt, clientID: clientID, jobID: jobID, body: body))
    }

    /// Sends what the outbox holds without blocking; what `socket` cannot take now stays queued.
    func flush(to socket: Socket) {
        outbox.drain({ try socket.trySend($0) }, failed: { [logger] in logger.warning("sending results failed: \($0)") })
    }

    /// Last chance for queued results before the socket closes (LINGER bounds it).
    func flushBeforeClose(to socket: Socket) {
        outbox.drain { message in
            try? socket.send(message, wait: false)
            return true
        }
    }
}
