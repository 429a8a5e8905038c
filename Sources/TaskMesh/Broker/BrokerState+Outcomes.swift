/// How an attempt ends on the broker's side: a requeue for the next attempt (or the end of the
/// job when none is left), a job put back untried, and a job finished with its outcome.
extension BrokerState {
    /// Requeues every job run by the connections in `holders` (which are gone).
    mutating func requeueAll(heldBy holders: Set<UInt32>, cause: String, now: Instant) {
        for slot in jobs.slots(in: .running) where holders.contains(jobs[slot].holder) {
            requeue(slot, cause: cause, now: now)
        }
    }

    /// Gives the job another attempt, or ends it when none is left.
    mutating func requeue(_ slot: Int32, cause: String, now: Instant) {
        let attempt = jobs[slot].attempt
        if jobs[slot].cancelRequested {
            let message = jobs[slot].message
            finish(slot, with: ResultMessage(status: .cancelled, attempt: attempt, clientID: message.clientID, jobID: message.jobID,
                                             body: Array("cancelled by its submitter; its attempt ended because \(cause)".utf8)), now: now)
            return
        }
        if Int(attempt) >= config.maxAttempts {
            stats.exhausted += 1
            let body = Array("gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"): the last ended because \(cause)".utf8)
            let message = jobs[slot].message
            finish(slot, with: ResultMessage(status: .exhausted, attempt: attempt, clientID: message.clientID, jobID: message.jobID, body: body),
                   now: now)
            return
        }
        stats.requeued += 1
        jobs[slot].attempt += 1
        putBackFirst(slot, now: now)
    }

    /// Takes a running job off its worker and puts it at the front of its lane, and the lane
    /// first in its round.
    mutating func putBackFirst(_ slot: Int32, now: Instant) {
        jobs[slot].phase = .queued
        jobs[slot].holder = 0
        jobs[slot].leaseUntil = nil
        let message = jobs[slot].message
        queues.prepend(slot, to: queues.lane(handler: message.handler, options: message.options, client: jobs[slot].client, now: now))
    }

    /// Ends a job with `result`, remembers the outcome for resubmissions, and sends it to the
    /// job's client.
    mutating func finish(_ slot: Int32, with result: ResultMessage, now: Instant) {
        let client = jobs[slot].message.clientID
        stats.completed += 1
        let expires = now + config.resultTTL
        jobs.finish(slot, outcome: result, expires: expires)
        while jobs.outcomeCount > finishedLimit || (jobs.outcomeBytes > finishedByteLimit && jobs.outcomeCount > 0) {
            jobs.forgetOldest()
        }
        post(.toClient(client, result))
    }
}
