import DequeModule

/// A job's identity at the broker: job ids are namespaced by their client. Held as one inline
/// copy of both ids (no reference counting for ids up to 32 bytes together), so the queue, the
/// running sets and the outcome cache copy, compare and hash keys without touching the heap.
struct JobKey: Hashable, Sendable {
    private let compact: CompactJobID

    init(clientID: [UInt8], jobID: [UInt8]) {
        compact = CompactJobID(namespace: clientID, id: jobID)
    }

    /// The client id, rebuilt from the key (allocates: for rare paths and tests).
    var clientID: [UInt8] {
        let bytes = compact.bytes
        return Array(bytes[1..<(1 + Int(bytes[0]))])
    }

    /// The job id, rebuilt from the key (allocates: for rare paths and tests).
    var jobID: [UInt8] {
        let bytes = compact.bytes
        return Array(bytes[(1 + Int(bytes[0]))...])
    }
}

/// A message the broker loop must send; the loop batches those for the same peer.
enum BrokerOutput: Equatable {
    /// A job (attempt number set) for the worker with this routing id.
    case toWorker([UInt8], JobMessage)
    /// An outcome for the client with this routing id.
    case toClient([UInt8], ResultMessage)
}

/// The broker's bookkeeping, without sockets: jobs, their attempts and leases, workers and their
/// free slots, and the cache of recent outcomes. Every event appends the messages to send to
/// `outbox` (and returns the ones it added); the loop owns the sockets and the clock and takes
/// the outbox once per wake-up. Invariants (tested): a job is in exactly one of the queue, a
/// worker's running jobs, or the finished cache; each job produces one outcome; at most
/// `maxAttempts` attempts start.
struct BrokerState {
    struct WorkerSlot {
        let workerID: [UInt8]
        /// Names this connection in the jobs it runs; never reused within a broker's run. A new
        /// connection of the same worker process takes over the jobs of the old one.
        var holder: UInt32
        var concurrency: Int
        /// Attempts it runs for the broker.
        var running = 0
        /// Slots still held by attempts whose lease expired (a hung handler keeps its slot).
        var stuck = 0
        var lastSeen: Instant
        var draining = false
        var free: Int { draining ? 0 : max(0, concurrency - running - stuck) }
    }

    let config: Topology.Broker
    let expiry: Duration
    private(set) var jobs = BrokerJobs()
    /// Slots of queued jobs, in dispatch order.
    private(set) var queue = Deque<Int32>()
    private(set) var workers: [[UInt8]: WorkerSlot] = [:]
    private var lastHolder: UInt32 = 0
    /// Most outcomes remembered at once, whatever their age, and most bytes they may hold.
    let finishedLimit: Int
    let finishedByteLimit: Int
    var stats = BrokerStats()
    /// What to send, in order, since the loop last took it.
    private(set) var outbox: [BrokerOutput] = []
    private var batchOpen = false

    init(config: Topology.Broker, expiry: Duration, finishedLimit: Int = 100_000, finishedByteLimit: Int = 256 << 20) {
        self.config = config
        self.expiry = expiry
        precondition(finishedLimit < 1 << 29, "an outcome cache of \(finishedLimit) entries")
        self.finishedLimit = finishedLimit
        self.finishedByteLimit = finishedByteLimit
    }

    var readyWorkers: Int {
        var count = 0
        for index in workers.indices where !workers.values[index].draining { count += 1 }
        return count
    }

    /// Opens a batch: the events until `endBatch(now:)` (the loop's: all it reads in one
    /// wake-up) leave dispatching to its end, which hands the freed slots and new jobs out in
    /// runs. Between the two, jobs may wait while a worker has a free slot.
    mutating func beginBatch() {
        batchOpen = true
    }

    /// Closes the batch `beginBatch()` opened and dispatches; returns what it added to send.
    @discardableResult
    mutating func endBatch(now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        batchOpen = false
        dispatch(now: now)
        return outbox[start...]
    }

    /// Hands the outbox to the loop, leaving `spare` (emptied, its capacity kept) in its place.
    mutating func takeOutbox(into spare: inout [BrokerOutput]) {
        spare.removeAll(keepingCapacity: true)
        swap(&outbox, &spare)
    }

    /// Adds a message of the loop's own to the outbox, after what is already there.
    mutating func post(_ output: BrokerOutput) {
        outbox.append(output)
    }

    // MARK: Clients

    /// A JOB from the client whose routing id is `client`.
    @discardableResult
    mutating func submit(_ message: JobMessage, from client: [UInt8], now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        guard message.clientID == client else {
            stats.malformed += 1  // a client may only submit under its own id
            return outbox[start...]
        }
        switch jobs.find(clientID: message.clientID, jobID: message.jobID) {
        case .finished(let outcome):
            stats.duplicatesAnswered += 1
            outbox.append(.toClient(client, outcome))
            return outbox[start...]
        case .live:
            stats.duplicatesInFlight += 1
            return outbox[start...]
        case nil:
            break
        }
        guard jobs.liveCount < config.queueLimit else {
            stats.rejectedOverloaded += 1
            let body = Array("the broker holds \(config.queueLimit) jobs (broker.queue_limit)".utf8)
            outbox.append(.toClient(client, ResultMessage(status: .overloaded, attempt: 0, clientID: message.clientID,
                                                          jobID: message.jobID, body: body)))
            return outbox[start...]
        }
        stats.accepted += 1
        queue.append(jobs.add(message))
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    /// Whether a job of this id is queued, running, or remembered as finished.
    mutating func knows(clientID: [UInt8], jobID: [UInt8]) -> Bool {
        jobs.find(clientID: clientID, jobID: jobID) != nil
    }

    // MARK: Workers

    @discardableResult
    mutating func ready(_ message: ReadyMessage, from worker: [UInt8], now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        var slot = workers[worker] ?? WorkerSlot(workerID: message.workerID, holder: nextHolder(), concurrency: Int(message.concurrency),
                                                 lastSeen: now)
        // The same worker process on a new connection: it still runs what the old one held.
        if let (oldID, old) = workers.first(where: { $0.key != worker && $0.value.workerID == message.workerID }) {
            workers.removeValue(forKey: oldID)
            slot.running += old.running
            slot.stuck += old.stuck
            for held in jobs.slots(in: .running) where jobs[held].holder == old.holder { jobs[held].holder = slot.holder }
        }
        slot.concurrency = Int(message.concurrency)
        slot.draining = message.concurrency == 0  // a stopping worker re-announcing itself takes nothing
        slot.lastSeen = now
        workers[worker] = slot
        updateWorkerGauge()
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    /// Any message from a worker proves it alive. Returns false for a worker that never said
    /// READY to this broker (it must be told to reconnect).
    mutating func heard(from worker: [UInt8], now: Instant) -> Bool {
        guard let index = workers.index(forKey: worker) else { return false }
        workers.values[index].lastSeen = now
        return true
    }

    @discardableResult
    mutating func result(_ message: ResultMessage, from worker: [UInt8], now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        let connection = workers.index(forKey: worker)
        // Only the connection that holds the current attempt may end it: a late answer from a
        // superseded attempt (or from an earlier run of a resubmitted id) is stale.
        guard let connection, case .live(let slot) = jobs.find(clientID: message.clientID, jobID: message.jobID),
              jobs[slot].phase == .running, jobs[slot].attempt == message.attempt,
              jobs[slot].holder == workers.values[connection].holder else {
            stats.staleResults += 1
            if let connection, workers.values[connection].stuck > 0 { workers.values[connection].stuck -= 1 }
            dispatchUnlessHeld(now: now)
            return outbox[start...]
        }
        workers.values[connection].running -= 1
        if message.status == .declined {  // never started: back to the front, same attempt
            putBackFirst(slot)
        } else {
            finish(slot, with: message, now: now)
        }
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    /// BYE: the worker is stopping; it gets no more jobs and finishes what it runs.
    mutating func bye(from worker: [UInt8]) {
        workers[worker]?.draining = true
        updateWorkerGauge()
    }

    /// DISCONNECT: the worker is gone; what it still ran goes to another worker.
    @discardableResult
    mutating func disconnect(from worker: [UInt8], now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        guard let slot = workers.removeValue(forKey: worker) else { return outbox[start...] }
        updateWorkerGauge()
        requeueAll(heldBy: [slot.holder], cause: "its worker left", now: now)
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    // MARK: Time

    /// Expires silent workers, overrun leases and old outcomes; returns what it added to send.
    @discardableResult
    mutating func tick(now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        let silent = workers.filter { now - $0.value.lastSeen > expiry }
        if !silent.isEmpty {
            for id in silent.keys { workers.removeValue(forKey: id) }
            stats.workersLost += UInt64(silent.count)
            updateWorkerGauge()
            requeueAll(heldBy: Set(silent.values.map(\.holder)), cause: "its worker went silent (crashed, frozen or cut off)", now: now)
        }
        for slot in jobs.slots(in: .running) where jobs[slot].leaseUntil.map({ $0 <= now }) ?? false {
            stats.leasesExpired += 1
            let holder = jobs[slot].holder
            if let connection = workers.firstIndex(where: { $0.value.holder == holder }) {
                workers.values[connection].running -= 1
                workers.values[connection].stuck += 1
            }
            requeue(slot, cause: "it overran its lease of \(config.lease)", now: now)
        }
        while let oldest = jobs.oldestOutcomeExpiry, oldest <= now { jobs.forgetOldest() }
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    // MARK: Internals

    /// Hands queued jobs to the workers with the most free slots, unless a batch holds
    /// dispatch back (`endBatch` then dispatches).
    private mutating func dispatchUnlessHeld(now: Instant) {
        if !batchOpen { dispatch(now: now) }
    }

    /// Hands queued jobs to the workers with the most free slots: each job goes to the worker
    /// with the most (the first of equals), given in runs of as many as keep it ahead.
    private mutating func dispatch(now: Instant) {
        defer { updateGauges() }
        guard !queue.isEmpty else { return }
        let lease = now + config.lease
        while !queue.isEmpty, let (connection, share) = nextShare() {
            let routing = workers.keys[connection]
            let holder = workers.values[connection].holder
            var given = 0
            while given < share, let slot = queue.popFirst() {
                guard jobs[slot].phase == .queued else { continue }
                let message: JobMessage = {
                    $0.phase = .running
                    $0.holder = holder
                    $0.leaseUntil = lease
                    var message = $0.message
                    message.attempt = $0.attempt
                    return message
                }(&jobs[slot])
                outbox.append(.toWorker(routing, message))
                given += 1
            }
            workers.values[connection].running += given
            stats.dispatched += UInt64(given)
        }
    }

    /// The worker with the most free slots (the first of equals), and how many jobs it takes
    /// before another has as many free (at least one); nil when none has a free slot.
    private func nextShare() -> (Dictionary<[UInt8], WorkerSlot>.Index, Int)? {
        var best: Dictionary<[UInt8], WorkerSlot>.Index?
        var bestFree = 0
        var secondFree = 0
        for index in workers.indices {
            let free = workers.values[index].free
            if free > bestFree {
                secondFree = bestFree
                (best, bestFree) = (index, free)
            } else if free > secondFree {
                secondFree = free
            }
        }
        guard let best else { return nil }
        return (best, max(1, bestFree - secondFree))
    }

    private mutating func nextHolder() -> UInt32 {
        lastHolder += 1
        return lastHolder
    }

    /// Requeues every job run by the connections in `holders` (which are gone).
    private mutating func requeueAll(heldBy holders: Set<UInt32>, cause: String, now: Instant) {
        for slot in jobs.slots(in: .running) where holders.contains(jobs[slot].holder) {
            requeue(slot, cause: cause, now: now)
        }
    }

    /// Gives the job another attempt, or ends it when none is left.
    private mutating func requeue(_ slot: Int32, cause: String, now: Instant) {
        let attempt = jobs[slot].attempt
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
        putBackFirst(slot)
    }

    /// Takes a running job off its worker and puts it at the front of the queue.
    private mutating func putBackFirst(_ slot: Int32) {
        jobs[slot].phase = .queued
        jobs[slot].holder = 0
        jobs[slot].leaseUntil = nil
        queue.prepend(slot)
    }

    /// Ends a job with `result`, remembers the outcome for resubmissions, and sends it to the
    /// job's client.
    private mutating func finish(_ slot: Int32, with result: ResultMessage, now: Instant) {
        let client = jobs[slot].message.clientID
        stats.completed += 1
        let expires = now + config.resultTTL
        jobs.finish(slot, outcome: result, expires: expires)
        while jobs.outcomeCount > finishedLimit || (jobs.outcomeBytes > finishedByteLimit && jobs.outcomeCount > 0) {
            jobs.forgetOldest()
        }
        outbox.append(.toClient(client, result))
    }

    /// The job gauges; after every dispatch, so cheap.
    private mutating func updateGauges() {
        stats.jobs = jobs.liveCount
        stats.queued = queue.count
    }

    /// The worker gauge, which walks the workers: only when one comes, goes or drains.
    private mutating func updateWorkerGauge() {
        stats.workers = readyWorkers
    }
}
