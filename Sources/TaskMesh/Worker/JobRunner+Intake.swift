/// The worker's intake: reading JOB and JOBS (and routing CANCEL), checking their senders,
/// answering at once what needs no handler, and handing back what will not run here.
extension JobRunner {
    /// Handles one received JOB or JOBS. While `declining`, valid jobs are answered `declined`
    /// unstarted. `sender` is the ZAP user id of the connection it came on (secure direct mode).
    /// Deadlines are fixed by this host's monotonic clock as the message is read (`receivedAt`,
    /// default now; docs/PROTOCOL.md, section 4).
    func accept(_ message: [UInt8], declining: Bool, sender: String? = nil, receivedAt now: Instant = .current) {
        messagesRead &+= 1
        if message.count > 3, message[3] != Wire.Command.job.rawValue {
            if message[3] == Wire.Command.jobs.rawValue {
                acceptBatch(message, declining: declining, sender: sender, receivedAt: now)
                return
            }
            if message[3] == Wire.Command.cancel.rawValue {
                cancel(message, sender: sender)
                return
            }
        }
        stats.received += 1
        let job: JobMessage
        do {
            job = try JobMessage.decode(message)
        } catch {
            stats.malformed += 1
            if let ids = JobMessage.salvageIDs(message) {
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
    func acceptBatch(_ message: [UInt8], declining: Bool, sender: String?, receivedAt now: Instant) {
        let batch: JobBatch
        do {
            batch = try JobBatch.decode(message)
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

    func accept(_ job: consuming JobMessage, declining: Bool, receivedAt now: Instant) {
        if declining {
            decline(job)
            return
        }
        let sameHandler = lastFound?.name == job.handler
        guard let entry = sameHandler ? lastFound?.entry : handlers.table[job.handler] else {
            stats.unknownHandler += 1
            reply(.unknownHandler, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: Array(job.handler.utf8))
            return
        }
        lastFound = (job.handler, entry)
        let run = entry.run
        // Looked up once per message and handler: timings change only as jobs end.
        if !sameHandler || lastFoundFast.message != messagesRead {
            lastFoundFast = (messagesRead, timings.isFast(job.handler))
        }
        inFlight += 1
        // The first job sets the mean, so a run of large jobs never starts from a mean of 0.
        meanPayloadBytes += (Double(job.payload.count) - meanPayloadBytes) / (payloadsSeen < 64 ? Double(payloadsSeen + 1) : 64)
        payloadsSeen += 1
        // The jobs of one message mostly carry the same time remaining (one client, one
        // timeout): work the local deadline out once for them, not per job.
        if lastDeadline.raw != job.deadline || lastDeadline.message != messagesRead {
            lastDeadline = (job.deadline, messagesRead, WireDeadline.local(job.deadline, receivedAt: now))
        }
        accepted.append(Accepted(job: job, run: run, deadline: lastDeadline.local, interruptible: !lastFoundFast.fast))
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

    func decline(_ job: JobMessage) {
        stats.declined += 1
        reply(.declined, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: [])
    }
}
