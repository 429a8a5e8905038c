import Logging
import ZMQ

/// A client's socket loop, run on its own thread by `Client`, over one `ClientTransport`
/// (direct: a PUSH per worker and the sink's DEALER; reliable: one DEALER to the broker).
///
/// The loop owns what every transport shares: jobs wait in the outbox while nothing can take
/// them, and every job that reached the loop ends exactly once here, by result, deadline,
/// cancellation or close.
final class ClientLoop<Transport: ClientTransport> {
    let core: ClientCore
    let topology: Topology
    let transport: Transport
    let logger: Logger

    var pending = PendingJobs()
    var stats = ClientStats()
    var nextHello: Instant = .current
    /// When this client last sent a CANCEL: closing soon after, it lingers so that it leaves.
    var lastCancelSent: Instant?

    init(core: ClientCore, topology: Topology, transport: Transport, logger: Logger) {
        self.core = core
        self.topology = topology
        self.transport = transport
        self.logger = logger
    }

    func run() {
        var poller = Poller()
        var pollerGeneration = -1
        let inboundIndex = 0
        while !core.thread.isStopRequested {
            takeInbox()
            if transport.canSend {
                transport.sendJobs(self)
                pending.releaseHeld()
            }
            if pollerGeneration != transport.pollGeneration {
                // The inbound socket, the wake-up signal, then the transport's own items.
                poller = Poller()
                poller.add(transport.inbound)
                poller.add(core.thread.signal)
                transport.addPollItems(to: &poller)
                pollerGeneration = transport.pollGeneration
            }
            let now = Instant.current
            var wake = nextHello
            if let deadline = pending.nextDeadline { wake = min(wake, deadline) }
            if let retry = pending.nextRetry { wake = min(wake, retry) }
            let jobsWaiting = transport.canSend && pending.nextToSend() != nil
            transport.setInterest(in: &poller, inboundIndex: inboundIndex, jobsWaiting: jobsWaiting)
            guard core.thread.wait(&poller, upTo: max(.zero, now.duration(to: wake)), logger: logger) else { break }
            if poller.events(at: inboundIndex).contains(.readable) { readInbound() }
            expireJobs()
            let afterPoll = Instant.current
            if afterPoll >= nextHello {
                nextHello = afterPoll + topology.heartbeat.interval
                transport.beat(now: afterPoll)
            }
            stats.pending = pending.count
            stats.workers = transport.workerCount
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
                transport.answered(by: entry.worker)
                end(entry.submission.promise, .failure(JobError(.cancelled)))
            }
        }
    }

    /// Tells the mesh a sent job was cancelled, through the transport. Best effort: a CANCEL
    /// that no socket takes now is dropped, and the job runs to its end there (its result is
    /// dropped here).
    func sendCancel(_ jobID: [UInt8], worker: UInt32) {
        let message = CancelMessage(clientID: core.clientID, jobID: jobID).encode()
        guard transport.sendCancel(message, worker: worker) else { return }
        stats.cancelsSent += 1
        lastCancelSent = .current
    }

    func readInbound() {
        // A receive error is a message of more than one frame: no hub sends one.
        SocketDrain.messages(receive: { () throws(ZMQError) in try transport.inbound.tryReceive(maxFrames: 1) },
                             malformed: { stats.malformed += 1 }) { frames in
            do throws(ProtocolViolation) {
                try transport.receive(frames[0], self)
            } catch {
                stats.malformed += 1
                logger.debug("dropped malformed message: \(error)")
            }
        }
    }

    /// Delivers a PROGRESS to its job's watchers; updates for jobs not pending are dropped.
    func handle(_ progress: ProgressMessage) {
        guard progress.clientID == core.clientID else {
            stats.malformed += 1
            return
        }
        pending.entry(progress.jobID)?.submission.promise.progress.deliver(JobProgress(progress))
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
                transport.answered(by: worker)
                stats.resent += 1
            }
            return
        }
        if result.status == .cancelled && pending.entry(result.jobID) == nil {
            return  // the answer to a CANCEL: the job ended here when it was cancelled
        }
        if transport.intercept(result, self) { return }
        guard let entry = pending.finish(result.jobID) else {
            stats.droppedLateOrDuplicate += 1
            return
        }
        transport.answered(by: entry.worker)
        end(entry.submission.promise, result.outcome)
    }

    func expireJobs() {
        for entry in pending.expire(at: .current) {
            transport.answered(by: entry.worker)
            let job = entry.submission
            if !entry.sent && transport.workerCount == 0 {
                end(job.promise, .failure(JobError(.noWorkers, "no worker was available before the deadline")))
            } else if !entry.sent, let missing = transport.missingWorkers(for: job) {
                end(job.promise, .failure(JobError(.noWorkers, "before the deadline, " + missing)))
            } else {
                end(job.promise, .failure(JobError(.timedOut, "no outcome before the deadline")))
            }
        }
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

    /// How long a closing client gives the CANCELs of its last cancellations to leave.
    static var cancelLinger: Duration { .milliseconds(500) }
    /// A client closing within this long of its last CANCEL lingers (`cancelLinger`): on a
    /// loaded machine the CANCEL may still wait in its socket well after it was sent.
    static var cancelRecent: Duration { .seconds(5) }

    func finish() {
        takeInbox()
        let linger: Duration = lastCancelSent.map { Instant.current - $0 < Self.cancelRecent } ?? false ? Self.cancelLinger : .zero
        for entry in pending.removeAll() {
            end(entry.submission.promise, .failure(JobError(.meshClosed, "the client was closed")))
        }
        stats.pending = 0
        core.stats.publish(stats)
        transport.close(linger: linger)
    }
}
