/// How waiting jobs leave together: the message builder both transports use.
extension ClientLoop {
    /// The next message to send, `job` (the next waiting one) first: a JOBS of the waiting jobs
    /// that fit one (at most an even share per destination; with `sameRoute`, only jobs of that
    /// routing class, so that the worker it goes to can run them all), or `job` alone as a JOB.
    /// `carryingOptions`: the destination reads priorities and labels (a broker); jobs with
    /// their own then travel in batches with the options flag, jobs with the standard ones in
    /// batches without it. Returns the outbox places it spans (for `markSent(span:)`) and how
    /// many jobs it carries.
    func nextJobMessage(startingWith job: Submission, destinations: Int, sameRoute route: WorkerLinks.RouteKey?,
                        carryingOptions: Bool) -> (message: [UInt8], span: Int, count: Int) {
        let share = (pending.waitingCount + destinations - 1) / destinations
        let withOptions = carryingOptions && !job.options.isStandard
        var batch = JobBatchWriter(clientID: core.clientID, maxEntries: max(1, share), withOptions: withOptions)
        // Deadlines leave as the time remaining now (docs/PROTOCOL.md, section 4): one clock
        // reading per message, so the receiver's clock need not agree with ours.
        let now = Instant.current
        let span = pending.peekToSend { next in
            if let route, next.handler != route.handler || next.options.requires != route.requires { return false }
            if carryingOptions && next.options.isStandard == withOptions { return false }
            // A job with its own retry policy, or a retry, travels alone.
            if next.retry != nil || next.attempt > 1 { return false }
            return batch.appendIfItFits(jobID: next.jobID, handler: next.handler, deadline: WireDeadline.relative(until: next.deadline, now: now),
                                        attempt: 1, payload: next.payload, options: next.options)
        }
        let count = batch.count
        if count > 1 { return (batch.encode(), span, count) }
        // One job waiting, or the next one too large to batch: a plain JOB.
        let message = JobMessage(clientID: core.clientID, jobID: job.jobID, handler: job.handler,
                                deadline: WireDeadline.relative(until: job.deadline, now: now), attempt: job.attempt, payload: job.payload,
                                options: carryingOptions ? job.options : .standard, retry: job.retry).encode()
        return (message, 1, 1)
    }
}
