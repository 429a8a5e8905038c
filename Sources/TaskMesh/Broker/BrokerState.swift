/// A message the broker loop must send; the loop batches those for the same peer.
enum BrokerOutput: Equatable {
    /// A job (attempt number set) for the worker with this routing id.
    case toWorker([UInt8], JobMessage)
    /// An outcome for the client with this routing id.
    case toClient([UInt8], ResultMessage)

    /// What the loop leaves in the outbox in place of a message it moved out.
    static let placeholder = BrokerOutput.toClient([], ResultMessage(status: .ok, attempt: 0, clientID: [], jobID: [], body: []))
}

/// The broker's bookkeeping, without sockets: jobs, their attempts and leases, workers, what they
/// can run and their free slots, and the cache of recent outcomes. Every event appends the
/// messages to send to `outbox` (and returns the ones it added); the loop owns the sockets and
/// the clocks and takes the outbox once per wake-up. Invariants (tested): a job is in exactly one
/// of the queues, a worker's running jobs, or the finished cache; each job produces one outcome;
/// at most `maxAttempts` attempts start; a worker is given only jobs whose handler it serves and
/// whose required labels it all carries, and never more than its free slots.
struct BrokerState {
    let config: Topology.Broker
    let expiry: Duration
    var jobs = BrokerJobs()
    /// The queued jobs, by routing class, priority and client.
    var queues = BrokerQueues()
    private(set) var workers: [[UInt8]: WorkerSlot] = [:]
    private var lastHolder: UInt32 = 0
    /// Most outcomes remembered at once, whatever their age, and most bytes they may hold.
    let finishedLimit: Int
    let finishedByteLimit: Int
    var stats = BrokerStats()
    /// What to send, in order, since the loop last took it.
    private(set) var outbox: [BrokerOutput] = []
    /// Jobs whose last attempt overran its lease, waiting for another worker
    /// (`BrokerState+Handoff`), oldest first.
    var handoffs: [Int32] = []
    /// Jobs waiting for their retry time (`BrokerState+Lifecycle`), earliest first.
    var retries = RetrySchedule()
    private var batchOpen = false

    init(config: Topology.Broker, expiry: Duration, finishedLimit: Int = 100_000, finishedByteLimit: Int = 256 << 20) {
        self.config = config
        self.expiry = expiry
        precondition(finishedLimit < 1 << 29, "an outcome cache of \(finishedLimit) entries")
        self.finishedLimit = finishedLimit
        self.finishedByteLimit = finishedByteLimit
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
        // The deadline by our own clock, from the time remaining when it arrived (section 4).
        let slot = jobs.add(message, now: now, deadline: WireDeadline.local(message.deadline, receivedAt: now))
        queues.append(slot, to: queues.lane(handler: message.handler, options: message.options, client: jobs[slot].client, now: now))
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    /// Whether a job of this id is queued, running, or remembered as finished.
    mutating func knows(clientID: [UInt8], jobID: [UInt8]) -> Bool {
        jobs.find(clientID: clientID, jobID: jobID) != nil
    }

    // MARK: Workers

    /// READY: a worker connection offers `message.concurrency` slots for the handlers and labels
    /// of `message.capabilities`. A later READY on the same connection replaces both (that is how
    /// a worker advertises anew); jobs it already runs stay with it.
    @discardableResult
    mutating func ready(_ message: ReadyMessage, from worker: [UInt8], now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        let draining = message.concurrency == 0  // a stopping worker re-announcing itself takes nothing
        var slot: WorkerSlot
        if let known = workers[worker] {
            slot = known
            queues.updateRoute(slot.route, capabilities: message.capabilities, live: !draining, now: now)
        } else {
            slot = WorkerSlot(workerID: message.workerID, holder: nextHolder(), concurrency: Int(message.concurrency), lastSeen: now,
                              route: queues.addRoute(message.capabilities, live: !draining, now: now))
        }
        // The same worker process on a new connection: it still runs what the old one held.
        if let (oldID, old) = workers.first(where: { $0.key != worker && $0.value.workerID == message.workerID }) {
            workers.removeValue(forKey: oldID)
            queues.removeRoute(old.route, now: now)
            slot.running += old.running
            slot.stuck += old.stuck
            slot.window = old.window
            for held in jobs.slots(in: .running) where jobs[held].holder == old.holder { jobs[held].holder = slot.holder }
        }
        slot.concurrency = Int(message.concurrency)
        slot.draining = draining
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

    /// A worker's heartbeat says it holds `held` jobs. Every result it sent before has been read
    /// (one connection keeps order), so attempts the broker gave up on at their lease and still
    /// counts against the worker (`stuck`) are at most `held`: the rest were lost on the way, or
    /// their result was (a worker that reconnected), and their slots are free again. Returns how
    /// many it freed.
    @discardableResult
    mutating func workerHolds(_ held: Int, from worker: [UInt8], now: Instant) -> Int {
        guard let connection = workers.index(forKey: worker), workers.values[connection].stuck > held else { return 0 }
        let freed = workers.values[connection].stuck - held
        workers.values[connection].stuck = held
        stats.slotsFreed += UInt64(freed)
        dispatchUnlessHeld(now: now)
        return freed
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
        workers.values[connection].earn()
        let handler = jobs[slot].message.handler
        if jobs[slot].cancelRequested {
            finish(slot, with: ResultMessage(status: .cancelled, attempt: message.attempt, clientID: message.clientID, jobID: message.jobID,
                                             body: Array("cancelled by its submitter".utf8)), now: now)
        } else if message.status == .retry {
            holdForRetry(slot, answer: message, now: now)
        } else if message.status == .declined {  // never started: back to the front, same attempt
            putBackFirst(slot, now: now)
        } else if message.status == .unknownHandler,
                  let served = queues.routes[Int(workers.values[connection].route)].capabilities.handlers, !served.contains(handler) {
            // The worker dropped the handler (its READY saying so came first): the job never
            // ran, so it goes to a worker that has it, under the same attempt.
            stats.rerouted += 1
            putBackFirst(slot, now: now)
        } else {
            finish(slot, with: message, now: now)
        }
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    /// BYE: the worker is stopping; it gets no more jobs and finishes what it runs. Returns what
    /// it added to send: a job that waited for a worker other than this one may go to one now.
    @discardableResult
    mutating func bye(from worker: [UInt8], now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        guard let route = workers[worker]?.route else { return outbox[start...] }
        workers[worker]?.draining = true
        queues.updateRoute(route, live: false, now: now)
        updateWorkerGauge()
        dispatchUnlessHeld(now: now)  // a job waiting for another worker than one may need it again
        return outbox[start...]
    }

    /// DISCONNECT: the worker is gone; what it still ran goes to another worker.
    @discardableResult
    mutating func disconnect(from worker: [UInt8], now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        guard let slot = workers.removeValue(forKey: worker) else { return outbox[start...] }
        queues.removeRoute(slot.route, now: now)
        updateWorkerGauge()
        requeueAll(heldBy: [slot.holder], cause: "its worker left", now: now)
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    // MARK: Time

    /// Expires silent workers, overrun leases, jobs no live worker can run (`endUnroutable`),
    /// queued jobs whose deadline passed (`endExpired`) and old outcomes; returns what it added
    /// to send. Deadlines are the monotonic ones fixed at submission: no wall clock is read.
    @discardableResult
    mutating func tick(now: Instant) -> ArraySlice<BrokerOutput> {
        let start = outbox.count
        let silent = workers.filter { now - $0.value.lastSeen > expiry }
        if !silent.isEmpty {
            for (id, slot) in silent {
                workers.removeValue(forKey: id)
                queues.removeRoute(slot.route, now: now)
            }
            stats.workersLost += UInt64(silent.count)
            updateWorkerGauge()
            requeueAll(heldBy: Set(silent.values.map(\.holder)), cause: "its worker went silent (crashed, frozen or cut off)", now: now)
        }
        var forfeited: Set<UInt32> = []
        for slot in jobs.slots(in: .running) where jobs[slot].leaseUntil.map({ $0 <= now }) ?? false {
            stats.leasesExpired += 1
            let holder = jobs[slot].holder
            if let connection = workers.firstIndex(where: { $0.value.holder == holder }) {
                workers.values[connection].running -= 1
                workers.values[connection].stuck += 1
                if forfeited.insert(holder).inserted {
                    workers.values[connection].forfeit()
                    stats.windowsHalved += 1
                }
            }
            requeue(slot, cause: "it overran its lease of \(config.lease)", now: now)
            // Its next attempt goes to another worker that can run it, waiting for one to have
            // room; to this one only when no other can run it.
            if jobs[slot].phase == .queued {
                jobs[slot].avoid = holder
                jobs[slot].avoidStrictly = true
            }
        }
        releaseRetries(now: now)
        endUnroutable(now: now)
        endExpired(now: now)
        queues.forgetEmptyLanes()
        while let oldest = jobs.oldestOutcomeExpiry, oldest <= now { jobs.forgetOldest() }
        dispatchUnlessHeld(now: now)
        return outbox[start...]
    }

    // MARK: Internals

    /// Hands queued jobs to the workers with the most free slots, unless a batch holds
    /// dispatch back (`endBatch` then dispatches).
    mutating func dispatchUnlessHeld(now: Instant) {
        if !batchOpen { dispatch(now: now) }
    }

    /// Hands queued jobs to the workers with the most free slots: each worker in turn, the one
    /// with the most (the first of equals), takes as many as keep it ahead, of the jobs it can
    /// run, chosen by `BrokerQueues.take` (priority, aging, round robin across lanes). A worker
    /// left with free slots and nothing it can run is passed over until the next dispatch.
    ///
    /// Each job taken whose deadline has passed (at or before `now`) ends `expired` instead of
    /// leaving; each one dispatched carries the time left until its deadline at `now`, in the
    /// relative form (docs/PROTOCOL.md, section 4), so time spent queued here is counted.
    private mutating func dispatch(now: Instant) {
        defer { updateGauges() }
        let lease = now + config.lease
        placeHandoffs(lease: lease, now: now)
        guard !queues.isEmpty else { return }
        var passedOver: [UInt32] = []
        while !queues.isEmpty, let (connection, share) = nextShare(passingOver: passedOver) {
            let routing = workers.keys[connection]
            let holder = workers.values[connection].holder
            let taken = queues.take(for: workers.values[connection].route, upTo: share, now: now, jobs: jobs)
            // Fewer than asked: nothing more it can run is queued (expired ones do not count:
            // they leave its slots free for the next round).
            if taken < share { passedOver.append(holder) }
            var given = 0
            for slot in queues.taken {
                if let deadline = jobs[slot].deadline, deadline <= now {
                    expire(slot, now: now)
                    continue
                }
                // A retry goes to another worker than the one whose attempt asked for it, when
                // one that can run it has room (only retried jobs pay for the look); the next
                // attempt of one that overran its lease here waits for such a worker.
                if jobs[slot].avoid != 0 {
                    if let other = elsewhere(slot, insteadOf: connection) {
                        startAttempt(slot, on: other, lease: lease, now: now)
                        stats.retriedElsewhere += 1
                        continue
                    }
                    if jobs[slot].avoidStrictly && jobs[slot].avoid == holder && canRunElsewhere(slot, avoiding: holder) {
                        handOff(slot)
                        continue
                    }
                    jobs[slot].avoid = 0
                    jobs[slot].avoidStrictly = false
                }
                outbox.append(.toWorker(routing, attemptMessage(slot, holder: holder, lease: lease, now: now)))
                given += 1
            }
            workers.values[connection].running += given
            stats.dispatched += UInt64(given)
        }
    }

    /// Marks the job in `slot` running on the connection `holder` until `lease`, and returns
    /// the JOB for it: its attempt number, and the time left until its deadline at `now`.
    private mutating func attemptMessage(_ slot: Int32, holder: UInt32, lease: Instant, now: Instant) -> JobMessage {
        {
            $0.phase = .running
            $0.holder = holder
            $0.leaseUntil = lease
            $0.avoid = 0
            $0.avoidStrictly = false
            var message = $0.message
            message.attempt = $0.attempt
            message.deadline = WireDeadline.relative(until: $0.deadline, now: now)
            return message
        }(&jobs[slot])
    }

    /// Starts the job in `slot` on the worker at `connection`, outside dispatch's own runs.
    mutating func startAttempt(_ slot: Int32, on connection: Dictionary<[UInt8], WorkerSlot>.Index, lease: Instant, now: Instant) {
        let message = attemptMessage(slot, holder: workers.values[connection].holder, lease: lease, now: now)
        outbox.append(.toWorker(workers.keys[connection], message))
        workers.values[connection].running += 1
        stats.dispatched += 1
    }

    private mutating func nextHolder() -> UInt32 {
        lastHolder += 1
        return lastHolder
    }

    /// The job gauges; after every dispatch, so cheap.
    private mutating func updateGauges() {
        stats.jobs = jobs.liveCount
        stats.queued = queues.count
    }

    /// The worker gauge, which walks the workers: only when one comes, goes or drains.
    private mutating func updateWorkerGauge() {
        stats.workers = readyWorkers
    }
}
