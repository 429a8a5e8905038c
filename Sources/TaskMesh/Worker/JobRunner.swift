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
    /// A job with its handler, waiting for a runner.
    struct Accepted: Sendable {
        let job: JobMessage
        let run: Handlers.Run
        /// Its deadline by this host's monotonic clock, fixed when the job was read
        /// (`WireDeadline.local`: relative form exactly, absolute form plus its 1 s tolerance);
        /// meaningful only with `hasDeadline`. A runner skips the job unstarted once it has
        /// passed. (Not an `Instant?`: this struct crosses generic code per job, where an
        /// optional of a stdlib struct costs value-witness calls.)
        let deadline: Instant
        let hasDeadline: Bool

        init(job: JobMessage, run: @escaping Handlers.Run, deadline: Instant?) {
            self.job = job
            self.run = run
            self.hasDeadline = deadline != nil
            self.deadline = deadline ?? JobRunner.noDeadline
        }
    }

    /// What `Accepted.deadline` holds for a job without one.
    static let noDeadline = Instant.current

    /// What a runner hands back to the loop.
    enum Completion: Sendable {
        /// The handler's result, with the handler's name and how long it ran.
        case result(ResultMessage, handler: String, elapsed: Duration)
        /// Skipped unstarted: its deadline had passed. The answer (status `expired`) frees the
        /// job's slot at a broker.
        case expired(ResultMessage)
        /// Its handler was cancelled (by CANCEL, or at its deadline) and has returned; the
        /// answer is `cancelled` or `expired`, whatever the handler returned.
        case stopped(ResultMessage, RunningJobs.Reason)
    }

    /// What the runner tasks share with each other and with the loop.
    final class Runners: Sendable {
        let queue = RunQueue<Accepted>()
        let completions = Shared<[Completion]>([])
        let signal: Signal
        let limit: Int
        let executionLog: ExecutionLog?
        let services: JobServices
        let running: RunningJobs
        /// How long jobs may run inline on the loop thread per wake-up (`JobRunner.inlineBudget`).
        let inlineBudget: Duration

        init(count: Int, signal: Signal, limit: Int, executionLog: ExecutionLog?, services: JobServices, inlineBudget: Duration) {
            self.inlineBudget = inlineBudget
            self.signal = signal
            self.limit = limit
            self.executionLog = executionLog
            self.services = services
            self.running = RunningJobs(runners: count)
        }
    }

    private var handlers: Handlers
    /// Messages read so far, and the last deadline field worked out (in which message, to what).
    private var messagesRead: UInt64 = 0
    private var lastDeadline: (raw: UInt64, message: UInt64, local: Instant?) = (0, 0, nil)
    /// Where `Worker.update(handlers:)` leaves a new handler table for the loop to take.
    private let handlerUpdates: Shared<Handlers?>
    /// This worker's labels (`worker.labels`).
    private let labels: [String]
    let runners: Runners
    var queue: RunQueue<Accepted> { runners.queue }
    private var timings = HandlerTimings()
    private let published: Shared<WorkerStats>
    /// Secure direct mode: a JOB's client id must be the key its sender proved.
    private let checksSender: Bool
    private let logger: Logger

    var stats = WorkerStats()
    /// Jobs accepted to run and not yet finished: queued for a runner or running.
    private(set) var inFlight = 0
    private var pendingResults = Deque<ResultMessage>()
    /// Progress updates to send; they leave before `pendingResults`, so a job's last update
    /// always precedes its result.
    private var pendingProgress = Deque<ProgressMessage>()
    /// When the loop should next look at running jobs' deadlines and at progress due.
    private var nextDeadlineSweep: Instant?
    private var nextProgress: Instant?
    /// Jobs accepted since the last `startAccepted()`.
    private var accepted: [Accepted] = []
    /// The handler found last: consecutive jobs mostly name the same one, and comparing its
    /// name costs less than hashing it per job.
    private var lastFound: (name: String, run: Handlers.Run)?

    /// How long a cancelled handler may take to return before it is counted as ignoring it.
    static let cancellationGrace: Duration = .seconds(1)
    /// How often the loop looks at running jobs' deadlines while jobs run.
    static let deadlineSweep: Duration = .milliseconds(50)

    init(handlers: Handlers, labels: Set<String> = [], handlerUpdates: Shared<Handlers?> = Shared(nil), concurrency: Int, limit: Int,
         signal: Signal, executionLog: ExecutionLog?, checksSender: Bool = false, published: Shared<WorkerStats>, logger: Logger,
         inlineBudget: Duration = JobRunner.inlineBudget) {
        self.published = published
        self.checksSender = checksSender
        self.handlers = handlers
        self.handlerUpdates = handlerUpdates
        self.labels = labels.sorted()
        self.logger = logger
        let count = max(1, concurrency)
        let services = JobServices(logger: logger, progress: ProgressBoard(wake: { [signal] in signal.notify() }))
        runners = Runners(count: count, signal: signal, limit: limit, executionLog: executionLog, services: services,
                          inlineBudget: inlineBudget)
        for slot in 0..<count { Self.startRunner(runners, slot: slot) }
    }

    /// One runner, serving `slot`: takes job after job until the queue closes, or until a job
    /// of its was cancelled (its task stays cancelled): then a fresh runner takes the slot.
    private static func startRunner(_ runners: Runners, slot: Int) {
        let task = Task {
            while var accepted = await runners.queue.next() {
                // While jobs are queued the runner goes from one to the next without suspending,
                // and one clock reading ends a job and starts the next.
                var start = ContinuousClock.now
                while true {
                    runners.running.begin(slot, clientID: accepted.job.clientID, jobID: accepted.job.jobID,
                                          deadline: accepted.deadline, hasDeadline: accepted.hasDeadline)
                    var (completion, end) = await execute(accepted, startedAt: start, runners)
                    if let reason = runners.running.end(slot) {
                        completion = stopped(accepted.job, reason, ranFor: end - start)
                        report(completion, to: runners)
                        runners.running.reset(slot)
                        startRunner(runners, slot: slot)
                        return
                    }
                    report(completion, to: runners)
                    guard let next = runners.queue.poll() else { break }
                    accepted = next
                    start = end
                }
            }
        }
        runners.running.attach(task, to: slot)
    }

    private static func stopped(_ job: JobMessage, _ reason: RunningJobs.Reason, ranFor elapsed: Duration) -> Completion {
        let (status, text): (ResultStatus, String) = reason == .cancelled
            ? (.cancelled, "cancelled by its submitter while running")
            : (.expired, "cancelled at its deadline after running \(elapsed)")
        return .stopped(ResultMessage(status: status, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: Array(text.utf8)), reason)
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
    static func execute(_ accepted: Accepted, startedAt start: ContinuousClock.Instant,
                        _ runners: Runners) async -> (Completion, ended: ContinuousClock.Instant) {
        let job = accepted.job
        if accepted.hasDeadline && start > accepted.deadline {
            let body = Array("skipped unstarted: its deadline passed before a runner was free".utf8)
            return (.expired(ResultMessage(status: .expired, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: body)), start)
        }
        runners.executionLog?.record(job)
        let context = JobContext(id: JobID(bytes: job.jobID), clientID: job.clientID, attempt: Int(job.attempt), handler: job.handler,
                                 deadline: accepted.hasDeadline ? accepted.deadline : nil, services: runners.services)
        var outcome = await accepted.run(Job(payload: job.payload, context: context, retryOverride: job.retry))
        let end = ContinuousClock.now
        if outcome.body.count > runners.limit {
            outcome = HandlerOutcome(.failed, Array("the result of \(outcome.body.count) bytes exceeds limits.max_payload (\(runners.limit) bytes)".utf8))
        }
        return (.result(ResultMessage(status: outcome.status, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: outcome.body),
                        handler: job.handler, elapsed: end - start), end)
    }

    var hasResultsToSend: Bool { !pendingResults.isEmpty || !pendingProgress.isEmpty }

    /// Whether jobs of `handler` may run on the loop thread now (`HandlerTimings.isFast`).
    func runsInline(_ handler: String) -> Bool { timings.isFast(handler) }
    /// Runners waiting for a job.
    var idleRunners: Int { queue.idleRunners }

    /// Jobs ended so far, and their recent mean time (nil until a few ended).
    var jobsTimed: Int { timings.jobsRecorded }
    /// Jobs ended so far that ran longer than `HandlerTimings.slowJob`.
    var slowJobs: Int { timings.slowJobsRecorded }
    var meanJobDuration: Duration? { timings.meanJobDuration }
    /// The payload size of recently accepted jobs: their plain mean over the first 64, then
    /// exponentially weighted (recent jobs weigh 1/64).
    private(set) var meanPayloadBytes: Double = 0
    private var payloadsSeen = 0

    /// Jobs accepted and not yet answered on the wire: running, waiting for a runner, or done
    /// with a result the socket has not taken yet. A loop that bounds this bounds the worker's
    /// memory, and passes back-pressure from a slow sink on to the clients.
    var unanswered: Int { inFlight + pendingResults.count }

    /// Handles one received JOB or JOBS. While `declining`, valid jobs are answered `declined`
    /// unstarted. `sender` is the ZAP user id of the connection it came on (secure direct mode).
    /// Deadlines are fixed by this host's monotonic clock as the message is read (`receivedAt`,
    /// default now; docs/PROTOCOL.md, section 4).
    func accept(_ frames: [[UInt8]], declining: Bool, sender: String? = nil, receivedAt now: Instant = .current) {
        messagesRead &+= 1
        if let header = frames.first, header.count > 3, header[3] != Wire.Command.job.rawValue {
            if header[3] == Wire.Command.jobs.rawValue {
                acceptBatch(frames, declining: declining, sender: sender, receivedAt: now)
                return
            }
            if header[3] == Wire.Command.cancel.rawValue {
                cancel(frames, sender: sender)
                return
            }
        }
        stats.received += 1
        let job: JobMessage
        do {
            job = try JobMessage.decode(frames)
        } catch {
            stats.malformed += 1
            if let ids = JobMessage.salvageIDs(frames) {
                reply(.badRequest, attempt: 1, clientID: ids.clientID, jobID: ids.jobID, body: Array("\(error)".utf8))
            }
            return
        }
        if checksSender && !RoleSecurity.identity(sender, owns: job.clientID) {
            stats.malformed += 1  // a client may only submit under its own key
            logger.warning("dropped a job whose client id is not its sender's key")
            return
        }
        accept(job, declining: declining, receivedAt: now)
    }

    /// Handles a JOBS message: each intact entry as if it came alone. A damaged entry is answered
    /// `badRequest` when its job id can be read; the entries after it cannot be located and are
    /// dropped with the message counted as malformed.
    private func acceptBatch(_ frames: [[UInt8]], declining: Bool, sender: String?, receivedAt now: Instant) {
        let batch: JobBatch
        do {
            batch = try JobBatch.decode(frames)
        } catch {
            stats.received += 1
            stats.malformed += 1
            logger.debug("dropped a malformed JOBS: \(error)")
            return
        }
        if checksSender && !RoleSecurity.identity(sender, owns: batch.clientID) {
            stats.received += UInt64(batch.count)
            stats.malformed += 1
            logger.warning("dropped jobs whose client id is not their sender's key")
            return
        }
        do throws(DamagedEntry) {
            try batch.forEach { job in
                stats.received += 1
                accept(job, declining: declining, receivedAt: now)
            }
        } catch {
            stats.malformed += 1
            if let jobID = error.jobID {
                stats.received += 1
                reply(.badRequest, attempt: error.attempt, clientID: batch.clientID, jobID: jobID, body: Array("\(error.violation)".utf8))
            }
        }
    }

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

    private func accept(_ job: JobMessage, declining: Bool, receivedAt now: Instant) {
        if declining {
            decline(job)
            return
        }
        guard let run = lastFound?.name == job.handler ? lastFound?.run : handlers.table[job.handler] else {
            stats.unknownHandler += 1
            reply(.unknownHandler, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: Array(job.handler.utf8))
            return
        }
        lastFound = (job.handler, run)
        inFlight += 1
        // The first job sets the mean, so a run of large jobs never starts from a mean of 0.
        meanPayloadBytes += (Double(job.payload.count) - meanPayloadBytes) / (payloadsSeen < 64 ? Double(payloadsSeen + 1) : 64)
        payloadsSeen += 1
        // The jobs of one message mostly carry the same time remaining (one client, one
        // timeout): work the local deadline out once for them, not per job.
        if lastDeadline.raw != job.deadline || lastDeadline.message != messagesRead {
            lastDeadline = (job.deadline, messagesRead, WireDeadline.local(job.deadline, receivedAt: now))
        }
        accepted.append(Accepted(job: job, run: run, deadline: lastDeadline.local))
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

    /// Hands back every accepted job no runner has started (the worker is stopping): each is
    /// answered `declined`, so its client (direct mode) or the broker sends it elsewhere.
    func declineQueued() {
        declineWaiting(leaving: 0)
    }

    /// Hands back the newest accepted jobs no runner has started, leaving the oldest `keep`
    /// waiting: each is answered `declined`, so the broker gives it to a worker with room (this
    /// one too, once it has some).
    func declineWaiting(leaving keep: Int) {
        // Jobs not handed to the run queue yet are newer than those in it.
        let queued = queue.takeNewest(leaving: keep)
        let room = queued.isEmpty ? max(0, keep - queue.count) : 0
        let newest = accepted.count > room ? Array(accepted[room...]) : []
        accepted.removeLast(newest.count)
        let handedBack = queued + newest
        inFlight -= handedBack.count
        for waiting in handedBack { decline(waiting.job) }
    }

    /// Stops the runners once their current job ends; queued jobs are handed back first.
    func close() {
        declineQueued()
        queue.close()
    }

    private func decline(_ job: JobMessage) {
        stats.declined += 1
        reply(.declined, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: [])
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
        switch completion {
        case .expired(let answer):
            stats.expired += 1
            if stats.expired == 1 || stats.expired.isMultiple(of: 1000) {
                logger.warning("skipped jobs whose deadline had passed (a backlog; or, for an old client's wall-clock deadline, a clock ahead of that client's)",
                               metadata: ["expired": "\(stats.expired)", "job": "\(JobID(bytes: answer.jobID))"])
            }
            pendingResults.append(answer)
        case .stopped(let answer, _):
            queueLastProgress(of: answer)
            pendingResults.append(answer)
        case .result(let result, let handler, let elapsed):
            timings.record(handler, elapsed)
            switch result.status {
            case .ok: stats.succeeded += 1
            case .rejected: stats.rejected += 1
            case .retry: stats.retried += 1
            default: stats.failed += 1
            }
            queueLastProgress(of: result)
            pendingResults.append(result)
        }
    }

    /// A job's update not yet sent goes out before its result.
    private func queueLastProgress(of result: ResultMessage) {
        let board = runners.services.progress
        guard !board.isEmpty,
              let last = board.finish(clientID: result.clientID, jobID: result.jobID, attempt: result.attempt, at: .current) else { return }
        pendingProgress.append(last)
    }

    /// Handles CANCEL: a job not started yet is answered `cancelled` and never runs; a running
    /// one has its handler's task cancelled (answered once it returns); anything else (already
    /// answered, or never seen) is ignored. `sender` is checked as for jobs.
    func cancel(_ frames: [[UInt8]], sender: String? = nil) {
        let message: CancelMessage
        do {
            message = try CancelMessage.decode(frames)
        } catch {
            stats.malformed += 1
            return
        }
        if checksSender && !RoleSecurity.identity(sender, owns: message.clientID) {
            stats.malformed += 1
            logger.warning("dropped a CANCEL whose client id is not its sender's key")
            return
        }
        let matches = { (candidate: Accepted) in candidate.job.jobID == message.jobID && candidate.job.clientID == message.clientID }
        if let index = accepted.firstIndex(where: matches) {
            endCancelled(accepted.remove(at: index).job)
        } else if let queued = queue.removeFirst(where: matches) {
            endCancelled(queued.job)
        } else if runners.running.cancel(clientID: message.clientID, jobID: message.jobID, at: .current) {
            stats.cancelled += 1
        }
    }

    private func endCancelled(_ job: JobMessage) {
        inFlight -= 1
        stats.cancelled += 1
        reply(.cancelled, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: Array("cancelled by its submitter before it started".utf8))
    }

    /// Cancels running handlers whose deadline has passed, and reports those that ignore
    /// their cancellation; returns when to look again (nil: nothing runs with a deadline).
    /// Cheap to call on every loop pass: it looks only when a sweep is due.
    func enforceDeadlines(at now: Instant) -> Instant? {
        if inFlight == 0 {
            nextDeadlineSweep = nil
            return nil
        }
        if let next = nextDeadlineSweep, now < next { return next }
        let sweep = runners.running.overdue(at: now, grace: Self.cancellationGrace)
        for job in sweep.cancelled {
            stats.cancelledAtDeadline += 1
            logger.info("cancelled a running job at its deadline", metadata: ["job": "\(JobID(bytes: job.jobID))"])
        }
        for job in sweep.ignoring {
            stats.ignoringCancellation += 1
            logger.warning("a cancelled handler has not returned after \(Self.cancellationGrace); it keeps its slot until it does",
                           metadata: ["job": "\(JobID(bytes: job.jobID))", "ignoring": "\(stats.ignoringCancellation)"])
        }
        // Jobs that start after this sweep may have an earlier deadline: look again soon.
        let soon = now + Self.deadlineSweep
        nextDeadlineSweep = sweep.next.map { min($0, soon) } ?? soon
        return nextDeadlineSweep
    }

    /// What the loop does on every pass besides reading and sending: deadlines of running jobs
    /// and progress due. Returns when it next has work (the loop's poll waits no longer).
    @discardableResult
    func housekeeping(at now: Instant) -> Instant? {
        let deadlines = enforceDeadlines(at: now)
        let progress = takeProgress(at: now)
        nextHousekeeping = switch (deadlines, progress) {
        case let (a?, b?): min(a, b)
        case let (a, b): a ?? b
        }
        return nextHousekeeping
    }

    /// When `housekeeping(at:)` next has work; nil: not before something arrives.
    private(set) var nextHousekeeping: Instant?

    /// Queues the progress updates due now; returns when the next falls due.
    func takeProgress(at now: Instant) -> Instant? {
        if let next = nextProgress, now < next, pendingProgress.isEmpty { return next }
        let (updates, next) = runners.services.progress.due(at: now)
        pendingProgress.append(contentsOf: updates)
        nextProgress = next
        return next
    }

    private func reply(_ status: ResultStatus, attempt: UInt16, clientID: [UInt8], jobID: [UInt8], body: [UInt8]) {
        pendingResults.append(ResultMessage(status: status, attempt: attempt, clientID: clientID, jobID: jobID, body: body))
    }

    /// Sends queued results without blocking, the oldest first and those for the same client
    /// queued right behind it together; what `socket` cannot take now stays queued.
    func flush(to socket: Socket) {
        while let update = pendingProgress.first {
            do {
                guard try socket.trySend(multipart: update.encode()) else { return }
            } catch {
                logger.warning("sending progress failed: \(error)")
            }
            pendingProgress.removeFirst()
        }
        while let (frames, results) = ResultBatchWriter.firstMessage(of: pendingResults) {
            do {
                guard try socket.trySend(multipart: frames) else { return }
            } catch {
                logger.warning("sending results failed: \(error)")
            }
            pendingResults.removeFirst(results)
        }
    }

    /// Last chance for queued results before the socket closes (LINGER bounds it).
    func flushBeforeClose(to socket: Socket) {
        while let update = pendingProgress.popFirst() { try? socket.send(multipart: update.encode(), wait: false) }
        while let (frames, results) = ResultBatchWriter.firstMessage(of: pendingResults) {
            try? socket.send(multipart: frames, wait: false)
            pendingResults.removeFirst(results)
        }
    }
}

