import DequeModule

/// The client's bookkeeping of its jobs: which are waiting to be sent, which are in flight, and
/// when each expires. It decides every job's single outcome; anything arriving for a job that has
/// already ended is reported as late or duplicate and dropped. Owned by the client loop.
///
/// Jobs live in reusable slots; the outbox and the expiry queue hold tickets (slot and the
/// slot's generation when the job was added), plain values that go stale when their job ends,
/// so ending a job touches neither queue and a job id is looked up only on arrival and on outcome.
struct PendingJobs {
    struct Entry {
        let submission: Submission
        var sent: Bool
        /// Whether it left this client at least once: it may be queued or running out there
        /// even while it waits here to be sent again (after a broker was lost, or a retry).
        var everSent = false
        /// The worker link the job was last sent to (direct mode); 0: none.
        var worker: UInt32 = 0
    }

    /// A job's place in the slot arrays, valid while the slot's generation is unchanged.
    struct Ticket: Equatable {
        let slot: Int32
        let generation: UInt32
    }

    /// What a slot says of its job, kept apart from the submission so that marking a job sent
    /// or checking a ticket copies no references.
    private struct SlotState {
        var generation: UInt32 = 0
        var occupied = false
        var sent = false
        var everSent = false
        var worker: UInt32 = 0
    }

    private var index = JobIndex()
    private var states: [SlotState] = []
    private var submissions: [Submission?] = []
    private var freeSlots: [Int32] = []
    /// Jobs waiting to be sent, highest priority first and oldest first within one; tickets of
    /// ended or sent jobs are skipped.
    private(set) var outbox = Outbox<Ticket>()
    private var expiries = ExpiryQueue<Ticket>()
    /// Direct mode: jobs waiting for their retry time, soonest first (failures are rare: a
    /// sorted array serves).
    private var retries: [(at: Instant, ticket: Ticket)] = []

    var count: Int { index.count }

    /// The pending job with this id, if any.
    func entry(_ jobID: [UInt8]) -> Entry? {
        index[jobID].map { entry(at: Int($0)) }
    }

    private func entry(at slot: Int) -> Entry {
        Entry(submission: submissions[slot]!, sent: states[slot].sent, everSent: states[slot].everSent, worker: states[slot].worker)
    }

    private func isLive(_ ticket: Ticket) -> Bool { Self.isLive(ticket, in: states) }

    /// A ticket is live while its slot still holds the job it was issued for.
    private static func isLive(_ ticket: Ticket, in states: [SlotState]) -> Bool {
        states[Int(ticket.slot)].generation == ticket.generation
    }

    /// Whether `ticket`'s job is pending and not sent.
    private func isWaiting(_ ticket: Ticket) -> Bool { Self.isWaiting(ticket, in: states) }

    private static func isWaiting(_ ticket: Ticket, in states: [SlotState]) -> Bool {
        let state = states[Int(ticket.slot)]
        return state.generation == ticket.generation && state.occupied && !state.sent
    }

    private func ticket(_ slot: Int32) -> Ticket {
        Ticket(slot: slot, generation: states[Int(slot)].generation)
    }

    /// Adds a job to send. Returns false (and adds nothing) when a job with its id is pending.
    mutating func add(_ submission: Submission) -> Bool {
        let slot = freeSlots.last ?? Int32(states.count)
        guard index.insert(submission.jobID, slot: slot) else { return false }
        if slot == freeSlots.last {
            freeSlots.removeLast()
            submissions[Int(slot)] = submission
        } else {
            states.append(SlotState())
            submissions.append(submission)
        }
        states[Int(slot)].occupied = true
        let ticket = ticket(slot)
        outbox.append(ticket, priority: submission.options.priority)
        expiries.insert(at: submission.deadline, key: ticket)
        return true
    }

    /// The next job to send, if any; skips jobs that already ended.
    mutating func nextToSend() -> Submission? {
        while let ticket = outbox.first {
            if isWaiting(ticket) { return submissions[Int(ticket.slot)] }
            outbox.removeFirst()
        }
        return nil
    }

    /// Records that the job returned by `nextToSend()` left the client.
    mutating func markSent() {
        markSent(span: 1)
    }

    /// Jobs waiting to be sent, counting the priority that leaves next only (stale tickets
    /// included: an upper bound).
    var waitingCount: Int { mutating get { outbox.front.count } }

    /// Jobs set aside by `parkNext()`, stale tickets included.
    var parkedCount: Int { outbox.parked.count }

    /// Sets the job `nextToSend()` returned aside until `unparkAll()`: no live worker can run it
    /// now, and the jobs behind it must not wait for it.
    mutating func parkNext() {
        outbox.parkFirst()
    }

    /// Holds the job `nextToSend()` returned back until `releaseHeld()`: every worker that can
    /// run it is full now, and the jobs behind it (for other workers) must not wait for it.
    mutating func holdNext() {
        outbox.holdFirst()
    }

    /// Puts the held jobs back at the front of the line, in order (the send pass is over).
    mutating func releaseHeld() {
        outbox.releaseHeld()
    }

    /// Puts every parked job back in line (the membership changed). Returns how many.
    @discardableResult
    mutating func unparkAll() -> Int {
        outbox.unparkAll()
    }

    /// Offers the jobs waiting to be sent to `take`, oldest first, until it returns false or none
    /// is left, without marking them sent. Only jobs of the priority that leaves next are
    /// offered. Returns how many outbox places the taken jobs span
    /// (stale tickets between them included): pass it to `markSent(span:)` once they left.
    mutating func peekToSend(_ take: (Submission) -> Bool) -> Int {
        guard nextToSend() != nil else { return 0 }  // drops stale tickets at the front
        var span = 0
        for ticket in outbox.front {
            if isWaiting(ticket) {
                guard take(submissions[Int(ticket.slot)]!) else { break }
            }
            span += 1
        }
        return span
    }

    /// Records that the jobs in the first `span` places of the outbox left the client, for the
    /// worker link `worker` (0: none).
    mutating func markSent(span: Int, to worker: UInt32 = 0) {
        for _ in 0..<span {
            let ticket = outbox.removeFirst()
            if isWaiting(ticket) {
                states[Int(ticket.slot)].sent = true
                states[Int(ticket.slot)].everSent = true
                states[Int(ticket.slot)].worker = worker
            }
        }
    }

    /// Puts a sent, unstarted job back at the front of the queue, to go to another worker.
    /// Returns false when no such job is pending (a job not sent yet is already queued).
    mutating func requeue(_ jobID: [UInt8]) -> Bool {
        guard let slot = index[jobID], states[Int(slot)].sent else { return false }
        states[Int(slot)].sent = false
        states[Int(slot)].worker = 0
        outbox.prepend(ticket(slot), priority: submissions[Int(slot)]!.options.priority)
        return true
    }

    /// Direct mode: the job's attempt failed with `retry`; it goes out again as the next
    /// attempt at `at`, avoiding the worker it failed on. False when it is not pending, the
    /// answer is not about its current attempt, or the job is not sent.
    mutating func scheduleRetry(_ jobID: [UInt8], attempt: UInt16, at: Instant) -> Bool {
        guard let slot = index[jobID], states[Int(slot)].sent, submissions[Int(slot)]!.attempt == attempt else { return false }
        submissions[Int(slot)]!.attempt = attempt &+ 1
        submissions[Int(slot)]!.avoidWorker = states[Int(slot)].worker
        states[Int(slot)].worker = 0
        // Not sent and not in the outbox: no send pass sees it until its time comes.
        states[Int(slot)].sent = false
        let ticket = ticket(slot)
        retries.insert((at, ticket), at: retries.firstIndex { $0.at > at } ?? retries.count)
        return true
    }

    /// When the next retry falls due.
    var nextRetry: Instant? { retries.first?.at }

    /// Puts the jobs whose retry time has come at the front of the line.
    mutating func releaseRetries(at now: Instant) {
        while let first = retries.first, first.at <= now {
            retries.removeFirst()
            guard isWaiting(first.ticket) else { continue }
            outbox.prepend(first.ticket, priority: submissions[Int(first.ticket.slot)]!.options.priority)
        }
    }

    /// Puts every job that was sent and has not ended back in the queue, oldest first, to be
    /// sent again under the same id (reliable mode, after the broker was lost). Returns how many.
    mutating func requeueAllSent() -> Int {
        let sent = index.slots.filter { states[Int($0)].sent }
            .sorted { submissions[Int($0)]!.deadline < submissions[Int($1)]!.deadline }
        for slot in sent.reversed() {
            states[Int(slot)].sent = false
            outbox.prepend(ticket(slot), priority: submissions[Int(slot)]!.options.priority)
        }
        return sent.count
    }

    /// Ends a job: removes it and returns its entry; nil when it had already ended.
    mutating func finish(_ jobID: [UInt8]) -> Entry? {
        guard let slot = index.remove(jobID) else { return nil }
        let entry = release(slot)
        compactIfSparse()
        return entry
    }

    /// Empties a slot for reuse; every ticket to it goes stale.
    private mutating func release(_ slot: Int32) -> Entry {
        // Moved out, not copied: no reference count is touched.
        let entry = Entry(submission: submissions[Int(slot)].take()!, sent: states[Int(slot)].sent, everSent: states[Int(slot)].everSent,
                          worker: states[Int(slot)].worker)
        states[Int(slot)] = SlotState(generation: states[Int(slot)].generation &+ 1)
        freeSlots.append(slot)
        return entry
    }

    /// Ended jobs leave their tickets in the outbox and the expiry queue: removing them at once
    /// would cost a search per job. Both are filtered when most of them is stale, so memory
    /// follows the number of pending jobs, not the throughput times the deadline.
    private mutating func compactIfSparse() {
        if index.isEmpty {
            expiries = ExpiryQueue()
            outbox.removeAll(keepingCapacity: outbox.count < 1024)
            states.removeAll(keepingCapacity: states.count < 1024)
            submissions.removeAll(keepingCapacity: submissions.count < 1024)
            freeSlots.removeAll(keepingCapacity: freeSlots.count < 1024)
            return
        }
        if expiries.count > 4096 && expiries.count > 4 * index.count {
            let states = self.states  // a copy of the reference: the closure may not read self while expiries mutates
            expiries.removeAll { !Self.isLive($0.key, in: states) }
        }
        let queued = outbox.count + outbox.parked.count
        if queued > 4096 && queued > 4 * index.count {
            let states = self.states
            outbox.filter { Self.isWaiting($0, in: states) }
        }
    }

    /// Removes and returns the jobs whose deadline is at or before `now`.
    mutating func expire(at now: Instant) -> [Entry] {
        var expired: [Entry] = []
        while let next = expiries.first, next.at <= now {
            expiries.removeFirst()
            guard isLive(next.key) else { continue }
            let entry = release(next.key.slot)
            _ = index.remove(entry.submission.jobID)
            expired.append(entry)
        }
        compactIfSparse()
        return expired
    }

    /// When the loop must next call `expire`: never later than the earliest pending deadline,
    /// and nil when no job is pending. It may be an ended job's deadline, earlier than needed;
    /// that costs one wake-up that expires nothing.
    var nextDeadline: Instant? {
        index.isEmpty ? nil : expiries.first?.at
    }

    /// Removes every job (the client is closing).
    mutating func removeAll() -> [Entry] {
        let all = index.slots.map { entry(at: Int($0)) }
        index.removeAll()
        states.removeAll()
        submissions.removeAll()
        freeSlots.removeAll()
        outbox.removeAll(keepingCapacity: false)
        expiries = ExpiryQueue()
        retries.removeAll()
        return all
    }
}
