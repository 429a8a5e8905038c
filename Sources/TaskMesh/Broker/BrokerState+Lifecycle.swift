/// CANCEL, PROGRESS and retries at the broker (docs/PROTOCOL.md, "CANCEL", "PROGRESS",
/// "Retries").
extension BrokerState {
    /// CANCEL from the client `client`: a queued or retry-waiting job ends `cancelled` at once
    /// and never runs; a running one is marked (it ends `cancelled` whatever its worker answers,
    /// and is not run again if its worker is lost) and the routing id of its worker is returned,
    /// for the loop to forward the CANCEL. Unknown or finished jobs: nothing.
    mutating func cancel(_ message: CancelMessage, from client: [UInt8], now: Instant) -> [UInt8]? {
        guard message.clientID == client, case .live(let slot) = jobs.find(clientID: message.clientID, jobID: message.jobID) else { return nil }
        stats.cancelled += 1
        let ended = ResultMessage(status: .cancelled, attempt: jobs[slot].attempt, clientID: message.clientID, jobID: message.jobID,
                                  body: Array("cancelled by its submitter before it started".utf8))
        switch jobs[slot].phase {
        case .queued:
            let job = jobs[slot].message
            queues.remove([slot], from: queues.lane(handler: job.handler, options: job.options, client: jobs[slot].client, now: now))
            finish(slot, with: ended, now: now)
            return nil
        case .waiting:
            retries.remove(slot)
            dropHandoff(slot)
            finish(slot, with: ended, now: now)
            return nil
        case .running:
            jobs[slot].cancelRequested = true
            let holder = jobs[slot].holder
            return workers.first { $0.value.holder == holder }?.key
        case .free:
            return nil
        }
    }

    /// PROGRESS from the worker `worker`: true when it is about the current attempt of a job
    /// that worker runs (the loop then forwards it to the job's client); stale ones are dropped.
    mutating func progressIsCurrent(_ message: ProgressMessage, from worker: [UInt8]) -> Bool {
        guard let connection = workers.index(forKey: worker),
              case .live(let slot) = jobs.find(clientID: message.clientID, jobID: message.jobID) else { return false }
        return jobs[slot].phase == .running && jobs[slot].attempt == message.attempt && !jobs[slot].cancelRequested
            && jobs[slot].holder == workers.values[connection].holder
    }

    /// The job in `slot` failed with `retry`: it waits for the delay the worker asked for (never
    /// past its deadline, where it ends `expired` instead), then runs as the next attempt.
    mutating func holdForRetry(_ slot: Int32, answer: ResultMessage, now: Instant) {
        let retry = RetryAnswer.decode(answer.body)
        let at = now + retry.delay
        if let deadline = jobs[slot].deadline, deadline <= at {
            let message = jobs[slot].message
            finish(slot, with: ResultMessage(status: .failed, attempt: answer.attempt, clientID: message.clientID, jobID: message.jobID,
                                             body: retry.message), now: now)
            return
        }
        stats.retried += 1
        jobs[slot].phase = .waiting
        jobs[slot].avoid = jobs[slot].holder
        jobs[slot].holder = 0
        jobs[slot].leaseUntil = nil
        retries.add(slot, at: at)
    }

    /// Requeues, at the front of their lanes and as their next attempt, the jobs whose retry
    /// time has come.
    mutating func releaseRetries(now: Instant) {
        while let slot = retries.popDue(at: now) {
            jobs[slot].attempt += 1
            putBackFirst(slot, now: now)
        }
    }

    /// When the next retry falls due; the loop wakes for it.
    var nextRetry: Instant? { retries.next }

    /// Where a job taken for `connection` goes instead when that connection ran the attempt that
    /// asked for this retry (or overran its lease): another ready worker that can run it and has
    /// a free slot (the most free first); nil when there is none, and the job runs where it was
    /// taken (or, after an overrun, waits for such a worker: `handOff`).
    func elsewhere(_ slot: Int32, insteadOf connection: Dictionary<[UInt8], WorkerSlot>.Index) -> Dictionary<[UInt8], WorkerSlot>.Index? {
        let avoid = jobs[slot].avoid
        guard avoid != 0, workers.values[connection].holder == avoid else { return nil }
        return roomElsewhere(for: slot, avoiding: avoid)
    }
}

/// Jobs waiting for their retry time, soonest first. Few at a time (failures are rare), so a
/// sorted array serves.
struct RetrySchedule {
    private var entries: [(at: Instant, slot: Int32)] = []

    var count: Int { entries.count }
    var next: Instant? { entries.first?.at }

    mutating func add(_ slot: Int32, at: Instant) {
        let index = entries.firstIndex { $0.at > at } ?? entries.count
        entries.insert((at, slot), at: index)
    }

    mutating func remove(_ slot: Int32) {
        entries.removeAll { $0.slot == slot }
    }

    mutating func popDue(at now: Instant) -> Int32? {
        guard let first = entries.first, first.at <= now else { return nil }
        entries.removeFirst()
        return first.slot
    }
}
