/// CANCEL, deadlines of running jobs, and progress, at the worker (docs/PROTOCOL.md, sections
/// 4, 5.9 and 5.10): what the loop asks of the runner besides running jobs.
extension JobRunner {
    /// A job's update not yet sent goes out before its result.
    func queueLastProgress(of result: ResultMessage) {
        guard !progressBoard.isEmpty,
              let last = progressBoard.finish(clientID: result.clientID, jobID: result.jobID, attempt: result.attempt, at: .current) else { return }
        outbox.append(last)
    }

    /// Handles CANCEL: a job not started yet is answered `cancelled` and never runs; a running
    /// one has its handler's task cancelled (answered once it returns); anything else (already
    /// answered, or never seen) is ignored. `sender` is checked as for jobs.
    func cancel(_ frame: [UInt8], sender: String? = nil) {
        let message: CancelMessage
        do {
            message = try CancelMessage.decode(frame)
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
        } else if inFlight > 0 {
            // Perhaps taken by a runner that has not started it yet (or ended, its completion
            // not read yet): the runner checks before it starts; `absorb` forgets it otherwise.
            runners.running.cancelOnArrival(clientID: message.clientID, jobID: message.jobID, at: .current)
        }
    }

    func endCancelled(_ job: JobMessage) {
        inFlight -= 1
        stats.cancelled += 1
        reply(.cancelled, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: Self.cancelledBeforeStart)
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
        runners.running.forgetEarly(before: now - RunningJobs.earlyRetention)
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

    /// Queues the progress updates due now; returns when the next falls due.
    func takeProgress(at now: Instant) -> Instant? {
        if let next = nextProgress, now < next { return next }
        let (updates, next) = progressBoard.due(at: now)
        outbox.append(contentsOf: updates)
        nextProgress = next
        return next
    }
}
