import Logging
import ZMQ

/// A client's socket loop, run on its own thread by `Client`.
///
/// Direct and local mode: it owns a PUSH per live worker (`WorkerLinks`: each message goes to the
/// worker with the fewest unanswered jobs) and a DEALER connected to the sink (results and
/// membership in, HELLO heartbeats out).
/// Reliable mode: one DEALER connected to the broker carries jobs out and results and heartbeats
/// in; when the broker was lost (silence) or replaced (a new instance id), every job sent and not
/// yet answered is sent again under its id, and the broker's dedup keeps it from running twice.
///
/// Jobs wait in the outbox while nothing can take them; every job ends exactly once here, by
/// result, deadline, cancellation or close.
final class ClientLoop {
    let core: ClientCore
    let topology: Topology
    let reliable: Bool
    /// Where results come from: the sink, or (reliable) the broker, which takes the jobs too.
    let sink: Socket
    let sockets: SocketFactory
    let logger: Logger

    var pending = PendingJobs()
    var stats = ClientStats()
    /// Direct mode: where jobs go.
    var links: WorkerLinks
    var lastLink: UInt32 = 0
    /// Direct mode: the links that refused a message in the last send pass (their queue is
    /// full); the loop waits for them to become writable.
    var fullLinks = Set<UInt32>()
    var membersEpoch: UInt64?
    var nextHello: Instant = .current
    // Reliable mode: what the broker last said of itself.
    var brokerInstance: UInt64?
    var brokerWorkers = 0
    var brokerHeardAt: Instant?
    /// When this client last sent a CANCEL: closing soon after, it lingers so that it leaves.
    var lastCancelSent: Instant?

    init(core: ClientCore, topology: Topology, sockets: SocketFactory, logger: Logger) throws {
        self.core = core
        self.topology = topology
        self.logger = logger
        self.sockets = sockets
        let reliable = topology.mode == .reliable
        self.reliable = reliable
        let serverKey = try sockets.security.map { (security) throws(SecurityError) in
            reliable ? try security.require(security.brokerKey, "security.servers.broker")
                     : try security.require(security.sinkKey, "security.servers.sink")
        }
        sink = try sockets.makeClient(.dealer, serverKey: serverKey)
        try sink.set(.routingID, core.clientID)
        try sink.connect(reliable ? topology.broker.clientsEndpoint : topology.sink.clientsEndpoint)
        links = WorkerLinks(leaveLinger: topology.worker.drainTimeout)
    }

    /// Workers known to take jobs: connected ones, or those the broker reports ready.
    var workerCount: Int { reliable ? brokerWorkers : links.count }

    func run() {
        var poller = Poller()
        var pollerGeneration = -1
        var linkIndexes: Range<Int> = 0..<0
        let sinkIndex = 0
        while !core.thread.isStopRequested {
            takeInbox()
            sendJobs()
            if pollerGeneration != links.generation {
                // The sink, the wake-up signal, then one item per worker link.
                poller = Poller()
                poller.add(sink)
                poller.add(core.thread.signal)
                let first = 2
                for link in links.links { poller.add(link.socket, []) }
                linkIndexes = first..<(first + links.count)
                pollerGeneration = links.generation
            }
            let now = Instant.current
            var wake = nextHello
            if let deadline = pending.nextDeadline { wake = min(wake, deadline) }
            if let retry = pending.nextRetry { wake = min(wake, retry) }
            let hasOutbox = pending.nextToSend() != nil && (reliable || !links.isEmpty)
            if reliable {
                poller.setInterest(hasOutbox ? [.readable, .writable] : .readable, at: sinkIndex)
            } else {
                // Only the workers that were full have jobs waiting for them; an idle worker of
                // another handler must not wake the loop.
                for (offset, index) in linkIndexes.enumerated() {
                    let waitedFor = hasOutbox && !fullLinks.isEmpty && fullLinks.contains(links.links[offset].id)
                    poller.setInterest(waitedFor ? .writable : [], at: index)
                }
            }
            do {
                try poller.poll(timeout: max(.zero, now.duration(to: wake)))
            } catch {
                logger.error("poll failed: \(error)")
                break
            }
            core.thread.signal.drain()
            if poller.events(at: sinkIndex).contains(.readable) { readSink() }
            expireJobs()
            if Instant.current >= nextHello { hello() }
            stats.pending = pending.count
            stats.workers = workerCount
            core.stats.publish(stats)
        }
        finish()
    }

    func takeInbox() {
        if let retry = pending.nextRetry, retry <= .current { pending.releaseRetries(at: .current) }
        let inbox = core.inbox.update { inbox -> ClientInbox in
            defer { inbox = ClientInbox() }
            return inbox
        }
        for submission in inbox.submissions {
            stats.submitted += 1
            if submission.promise.isComplete {  // cancelled before the loop saw it
                end(submission.promise, .failure(JobError(.cancelled)))
            } else if !pending.add(submission) {
                end(submission.promise, .failure(JobError(.duplicateJobID, "job \(JobID(bytes: submission.jobID)) is already pending")))
            }
        }
        for id in inbox.cancellations {
            if let entry = pending.finish(id) {
                // Also when it waits to be sent again: the copy that left may be running.
                if entry.everSent { sendCancel(id, worker: entry.worker) }
                links.answered(by: entry.worker)
                end(entry.submission.promise, .failure(JobError(.cancelled)))
            }
        }
    }

    /// Sends waiting jobs until no socket takes more. Jobs that are waiting together leave
    /// together, as JOBS messages (in direct mode at most an even share per worker); a lone or
    /// large job leaves as a JOB. In direct mode each message goes to the worker with the fewest
    /// unanswered jobs that can take it; in reliable mode everything goes to the broker.
    func sendJobs() {
        guard reliable || !links.isEmpty else { return }
        fullLinks.removeAll(keepingCapacity: true)
        defer { pending.releaseHeld() }
        while let job = pending.nextToSend() {
            if reliable {
                let (frames, span, _) = nextJobMessage(startingWith: job, destinations: 1, sameRoute: nil)
                do {
                    guard try sink.trySend(multipart: frames) else { return }
                } catch {
                    logger.error("sending jobs failed: \(error)")
                    return
                }
                pending.markSent(span: span)
                continue
            }
            let route = WorkerLinks.RouteKey(handler: job.handler, requires: job.options.requires)
            var eligible = links.eligible(route)
            if job.avoidWorker != 0 && eligible.count > 1 {
                // A retry goes to another worker than the one it failed on, when there is one.
                eligible.removeAll { $0.id == job.avoidWorker }
            }
            if eligible.isEmpty {
                unroutable(job)
                continue
            }
            // Every worker that can run it is full: hold it for this pass, so that jobs for
            // other workers behind it still leave; when every worker is full, nothing can.
            if !fullLinks.isEmpty && eligible.allSatisfy({ fullLinks.contains($0.id) }) {
                if fullLinks.count >= links.count { return }
                pending.holdNext()
                continue
            }
            let (frames, span, count) = nextJobMessage(startingWith: job, destinations: eligible.count, sameRoute: route)
            guard let link = send(frames, among: eligible) else {
                if fullLinks.count >= links.count { return }
                pending.holdNext()
                continue
            }
            lastLink = link
            links.sent(count, to: link)
            pending.markSent(span: span, to: link)
        }
    }

    /// Tells the mesh a sent job was cancelled: CANCEL to the worker it went to (direct mode)
    /// or to the broker. Best effort: a CANCEL that no socket takes now is dropped, and the job
    /// runs to its end there (its result is dropped here).
    func sendCancel(_ jobID: [UInt8], worker: UInt32) {
        let frames = CancelMessage(clientID: core.clientID, jobID: jobID).encode()
        // Direct mode: a job waiting to go again (a retry) is at no worker now.
        guard let socket = reliable ? sink : links.link(worker)?.socket else { return }
        guard (try? socket.trySend(multipart: frames)) == true else { return }
        stats.cancelsSent += 1
        lastCancelSent = .current
    }

    /// Delivers a PROGRESS to its job's watchers; updates for jobs not pending are dropped.
    func handle(_ progress: ProgressMessage) {
        guard progress.clientID == core.clientID else {
            stats.malformed += 1
            return
        }
        pending.entry(progress.jobID)?.submission.promise.progress.deliver(JobProgress(progress))
    }

    /// The next message to send, `job` (the next waiting one) first: a JOBS of the waiting jobs
    /// that fit one (at most an even share per destination; in direct mode only jobs of `job`'s
    /// routing class, so that the worker it goes to can run them all), or `job` alone as a JOB.
    /// Returns the outbox places it spans (for `markSent(span:)`) and how many jobs it carries.
    func nextJobMessage(startingWith job: Submission, destinations: Int,
                                sameRoute route: WorkerLinks.RouteKey?) -> (frames: [[UInt8]], span: Int, count: Int) {
        let share = (pending.waitingCount + destinations - 1) / destinations
        // To a broker, jobs with their own priority or labels carry them (the batch's options
        // flag); jobs with the standard ones travel in batches of their own without it.
        let withOptions = reliable && !job.options.isStandard
        var batch = JobBatchWriter(clientID: core.clientID, maxEntries: max(1, share), withOptions: withOptions)
        // Deadlines leave as the time remaining now (docs/PROTOCOL.md, section 4): one clock
        // reading per message, so the receiver's clock need not agree with ours.
        let now = Instant.current
        let span = pending.peekToSend { next in
            if let route, next.handler != route.handler || next.options.requires != route.requires { return false }
            if reliable && next.options.isStandard == withOptions { return false }
            // A job with its own retry policy, or a retry, travels alone.
            if next.retry != nil || next.attempt > 1 { return false }
            return batch.appendIfItFits(jobID: next.jobID, handler: next.handler, deadline: WireDeadline.relative(until: next.deadline, now: now),
                                        attempt: 1, payload: next.payload, options: next.options)
        }
        if batch.count > 1 { return (batch.encode(), span, batch.count) }
        // One job waiting, or the next one too large to batch: a plain JOB.
        let frames = JobMessage(clientID: core.clientID, jobID: job.jobID, handler: job.handler,
                                deadline: WireDeadline.relative(until: job.deadline, now: now), attempt: job.attempt, payload: job.payload,
                                options: reliable ? job.options : .standard, retry: job.retry).encode()
        return (frames, 1, 1)
    }

    func readSink() {
        for _ in 0..<4096 {
            let frames: [[UInt8]]
            do {
                guard let received = try sink.tryReceive(maxFrames: 2) else { return }
                frames = received
            } catch {
                if error.endsTheSocket { return }
                stats.malformed += 1
                continue
            }
            do throws(ProtocolViolation) {
                if reliable {
                    switch try FromBroker.decode(frames) {
                    case .result(let result): handle(result)
                    case .results(let batch): handle(batch)
                    case .heartbeat(let heartbeat): brokerSpoke(heartbeat)
                    case .progress(let progress): handle(progress)
                    case .job, .jobs, .disconnect, .cancel: stats.malformed += 1
                    }
                } else {
                    switch try SinkToClient.decode(frames) {
                    case .result(let result): handle(result)
                    case .results(let batch): handle(batch)
                    case .members(let members): apply(members)
                    case .progress(let progress): handle(progress)
                    }
                }
            } catch {
                stats.malformed += 1
                logger.debug("dropped malformed message: \(error)")
            }
        }
    }

    func handle(_ batch: ResultBatch) {
        guard batch.clientID == core.clientID else {
            stats.malformed += 1
            return
        }
        do throws(DamagedEntry) {
            try batch.forEach { handle($0) }
        } catch {
            stats.malformed += 1
            logger.debug("dropped the rest of a damaged RESULTS: \(error.violation)")
        }
    }

    func handle(_ result: ResultMessage) {
        guard result.clientID == core.clientID else {
            stats.malformed += 1
            return
        }
        if result.status == .declined {
            if let worker = pending.entry(result.jobID)?.worker, pending.requeue(result.jobID) {
                links.answered(by: worker)
                stats.resent += 1
            }
            return
        }
        if result.status == .cancelled && pending.entry(result.jobID) == nil {
            return  // the answer to a CANCEL: the job ended here when it was cancelled
        }
        if result.status == .retry, !reliable, let entry = pending.entry(result.jobID) {
            retry(entry, answer: result)
            return
        }
        if result.status == .unknownHandler, !reliable, let entry = pending.entry(result.jobID), entry.worker != 0,
           links.withdraw(entry.submission.handler, from: entry.worker), pending.requeue(result.jobID) {
            // The worker advertised the handler but no longer has it (its list changed on the
            // way): the job never ran; send it to a worker that has it, or end it `noWorkers`.
            links.answered(by: entry.worker)
            stats.resent += 1
            return
        }
        guard let entry = pending.finish(result.jobID) else {
            stats.droppedLateOrDuplicate += 1
            return
        }
        links.answered(by: entry.worker)
        end(entry.submission.promise, result.outcome)
    }

    /// Direct mode: the job's attempt failed and its policy runs it again: it goes out after
    /// the delay the worker asked for, as the next attempt, to another worker when one can run
    /// it. A retry that would start after the job's deadline is not made: the job ends with
    /// this attempt's error.
    func retry(_ entry: PendingJobs.Entry, answer: ResultMessage) {
        let at = Instant.current + RetryAnswer.decode(answer.body).delay
        links.answered(by: entry.worker)
        if at < entry.submission.deadline, pending.scheduleRetry(answer.jobID, attempt: answer.attempt, at: at) {
            stats.retried += 1
            return
        }
        guard let ended = pending.finish(answer.jobID) else { return }
        end(ended.submission.promise, answer.outcome)
    }

    func expireJobs() {
        for entry in pending.expire(at: .current) {
            links.answered(by: entry.worker)
            let job = entry.submission
            if !entry.sent && workerCount == 0 {
                end(job.promise, .failure(JobError(.noWorkers, "no worker was available before the deadline")))
            } else if !entry.sent && !reliable && links.eligible(.init(handler: job.handler, requires: job.options.requires)).isEmpty {
                end(job.promise, .failure(JobError(.noWorkers, "before the deadline, " + RouteMessage.missing(
                    handler: job.handler, requires: job.options.requires, handlers: links.handlersOffered, labels: links.labelsOffered))))
            } else {
                end(entry.submission.promise, .failure(JobError(.timedOut, "no outcome before the deadline")))
            }
        }
    }

    func hello() {
        let now = Instant.current
        nextHello = now + topology.heartbeat.interval
        if reliable, let heard = brokerHeardAt, now - heard > topology.heartbeat.expiry {
            brokerWorkers = 0  // a lost broker reports no workers until it speaks again
        }
        _ = try? sink.trySend(multipart: reliable ? bareCommand(.heartbeat) : HelloMessage().encode())
    }

    /// Every job that reached the loop ends here, exactly once. Its promise may already hold
    /// `cancelled` (set by its submitter); then this outcome is dropped.
    func end(_ promise: Promise, _ outcome: Result<[UInt8], JobError>) {
        core.pendingCount.subtract(1, ordering: .relaxed)
        let final = promise.complete(outcome) ? outcome : .failure(JobError(.cancelled))
        switch final {
        case .success: stats.succeeded += 1
        case .failure(let error) where error.code == .timedOut || error.code == .noWorkers: stats.timedOut += 1
        case .failure: stats.failed += 1
        }
    }

    /// How long a closing client gives the CANCELs of its last cancellations to leave (those
    /// sent within that time before it closed).
    static let cancelLinger: Duration = .milliseconds(500)

    func finish() {
        takeInbox()
        let linger: Duration = lastCancelSent.map { Instant.current - $0 < Self.cancelLinger } ?? false ? Self.cancelLinger : .zero
        for entry in pending.removeAll() {
            end(entry.submission.promise, .failure(JobError(.meshClosed, "the client was closed")))
        }
        stats.pending = 0
        core.stats.publish(stats)
        try? sink.set(.linger, linger)
        sink.close()
        links.closeAll(linger: linger)
    }
}
