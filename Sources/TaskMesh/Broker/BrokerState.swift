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
/// free slots, and the cache of recent outcomes. Every event returns the messages to send; the
/// loop owns the sockets and the clock. Invariants (tested): a job is in exactly one of the queue,
/// a worker's running set, or the finished cache; each job produces one outcome; at most
/// `maxAttempts` attempts start.
struct BrokerState {
    struct Job {
        var message: JobMessage
        /// The number of the current attempt, from 1. Results carrying another number are stale.
        var attempt: UInt16
        /// The routing id of the worker running the current attempt; nil while queued.
        var worker: [UInt8]?
        var leaseUntil: Instant?
        var lastCause = ""
    }

    struct WorkerSlot {
        let workerID: [UInt8]
        var concurrency: Int
        var running: Set<JobKey> = []
        /// Slots still held by attempts whose lease expired (a hung handler keeps its slot).
        var stuck = 0
        var lastSeen: Instant
        var draining = false
        var free: Int { draining ? 0 : max(0, concurrency - running.count - stuck) }
    }

    let config: Topology.Broker
    let expiry: Duration
    private(set) var queue = Deque<JobKey>()
    private(set) var jobs: [JobKey: Job] = [:]
    private(set) var workers: [[UInt8]: WorkerSlot] = [:]
    private var finished: [JobKey: (result: ResultMessage, expires: Instant)] = [:]
    private var finishedOrder = Deque<(key: JobKey, expires: Instant)>()
    /// Most outcomes remembered at once, whatever their age, and most bytes they may hold.
    let finishedLimit: Int
    let finishedByteLimit: Int
    private var finishedBytes = 0
    var stats = BrokerStats()

    init(config: Topology.Broker, expiry: Duration, finishedLimit: Int = 100_000, finishedByteLimit: Int = 256 << 20) {
        self.config = config
        self.expiry = expiry
        self.finishedLimit = finishedLimit
        self.finishedByteLimit = finishedByteLimit
    }

    var readyWorkers: Int {
        var count = 0
        for index in workers.indices where !workers.values[index].draining { count += 1 }
        return count
    }

    // MARK: Clients

    /// A JOB from the client whose routing id is `client`.
    mutating func submit(_ message: JobMessage, from client: [UInt8], now: Instant) -> [BrokerOutput] {
        guard message.clientID == client else {
            stats.malformed += 1  // a client may only submit under its own id
            return []
        }
        let key = JobKey(clientID: message.clientID, jobID: message.jobID)
        if jobs[key] != nil {
            stats.duplicatesInFlight += 1
            return []
        }
        if let done = finished[key] {
            stats.duplicatesAnswered += 1
            return [.toClient(client, done.result)]
        }
        guard jobs.count < config.queueLimit else {
            stats.rejectedOverloaded += 1
            let body = Array("the broker holds \(config.queueLimit) jobs (broker.queue_limit)".utf8)
            return [.toClient(client, ResultMessage(status: .overloaded, attempt: 0, clientID: key.clientID, jobID: key.jobID, body: body))]
        }
        stats.accepted += 1
        jobs[key] = Job(message: message, attempt: 1)
        queue.append(key)
        return dispatch(now: now)
    }

    /// Whether a job of this id is queued, running, or remembered as finished.
    func knows(clientID: [UInt8], jobID: [UInt8]) -> Bool {
        let key = JobKey(clientID: clientID, jobID: jobID)
        return jobs[key] != nil || finished[key] != nil
    }

    // MARK: Workers

    mutating func ready(_ message: ReadyMessage, from worker: [UInt8], now: Instant) -> [BrokerOutput] {
        var slot = workers[worker] ?? WorkerSlot(workerID: message.workerID, concurrency: Int(message.concurrency), lastSeen: now)
        // The same worker process on a new connection: it still runs what the old one held.
        if let (oldID, old) = workers.first(where: { $0.key != worker && $0.value.workerID == message.workerID }) {
            workers.removeValue(forKey: oldID)
            slot.running.formUnion(old.running)
            slot.stuck += old.stuck
            for key in old.running { jobs[key]?.worker = worker }
        }
        slot.concurrency = Int(message.concurrency)
        slot.draining = message.concurrency == 0  // a stopping worker re-announcing itself takes nothing
        slot.lastSeen = now
        workers[worker] = slot
        updateWorkerGauge()
        return dispatch(now: now)
    }

    /// Any message from a worker proves it alive. Returns false for a worker that never said
    /// READY to this broker (it must be told to reconnect).
    mutating func heard(from worker: [UInt8], now: Instant) -> Bool {
        guard workers[worker] != nil else { return false }
        workers[worker]?.lastSeen = now
        return true
    }

    mutating func result(_ message: ResultMessage, from worker: [UInt8], now: Instant) -> [BrokerOutput] {
        let key = JobKey(clientID: message.clientID, jobID: message.jobID)
        // Only the connection that holds the current attempt may end it: a late answer from a
        // superseded attempt (or from an earlier run of a resubmitted id) is stale.
        guard let index = jobs.index(forKey: key), jobs.values[index].attempt == message.attempt,
              let holder = jobs.values[index].worker, holder == worker else {
            stats.staleResults += 1
            if let stuck = workers[worker]?.stuck, stuck > 0 { workers[worker]?.stuck = stuck - 1 }
            return dispatch(now: now)
        }
        workers[holder]?.running.remove(key)
        if message.status == .declined {  // never started: back to the front, same attempt
            jobs.values[index].worker = nil
            jobs.values[index].leaseUntil = nil
            queue.prepend(key)
            return dispatch(now: now)
        }
        var out = finish(key, at: index, with: message, now: now)
        out += dispatch(now: now)
        return out
    }

    /// BYE: the worker is stopping; it gets no more jobs and finishes what it runs.
    mutating func bye(from worker: [UInt8]) {
        workers[worker]?.draining = true
        updateWorkerGauge()
    }

    /// DISCONNECT: the worker is gone; what it still ran goes to another worker.
    mutating func disconnect(from worker: [UInt8], now: Instant) -> [BrokerOutput] {
        guard let slot = workers.removeValue(forKey: worker) else { return [] }
        updateWorkerGauge()
        var out: [BrokerOutput] = []
        for key in slot.running { out += requeue(key, cause: "its worker left", now: now) }
        return out + dispatch(now: now)
    }

    // MARK: Time

    /// Expires silent workers, overrun leases and old outcomes; returns what to send.
    mutating func tick(now: Instant) -> [BrokerOutput] {
        var out: [BrokerOutput] = []
        for (id, slot) in workers where now - slot.lastSeen > expiry {
            workers.removeValue(forKey: id)
            stats.workersLost += 1
            updateWorkerGauge()
            for key in slot.running { out += requeue(key, cause: "its worker went silent (crashed, frozen or cut off)", now: now) }
        }
        let overrun = jobs.filter { $0.value.leaseUntil.map { $0 <= now } ?? false }.map(\.key)
        for key in overrun {
            stats.leasesExpired += 1
            if let holder = jobs[key]?.worker, workers[holder]?.running.remove(key) != nil {
                workers[holder]?.stuck += 1
            }
            out += requeue(key, cause: "it overran its lease of \(config.lease)", now: now)
        }
        while let oldest = finishedOrder.first, oldest.expires <= now {
            finishedOrder.removeFirst()
            forget(oldest)
        }
        return out + dispatch(now: now)
    }

    // MARK: Internals

    /// Hands queued jobs to the workers with the most free slots.
    mutating func dispatch(now: Instant) -> [BrokerOutput] {
        var out: [BrokerOutput] = []
        while let key = queue.first {
            guard let worker = mostFreeWorker() else { break }
            queue.removeFirst()
            guard let index = jobs.index(forKey: key) else { continue }
            let id = workers.keys[worker]
            jobs.values[index].worker = id
            jobs.values[index].leaseUntil = now + config.lease
            workers.values[worker].running.insert(key)
            stats.dispatched += 1
            var message = jobs.values[index].message
            message.attempt = jobs.values[index].attempt
            out.append(.toWorker(id, message))
        }
        updateGauges()
        return out
    }

    /// The worker with the most free slots, if any has one.
    private func mostFreeWorker() -> Dictionary<[UInt8], WorkerSlot>.Index? {
        var best: (index: Dictionary<[UInt8], WorkerSlot>.Index, free: Int)?
        for index in workers.indices {
            let free = workers.values[index].free
            if free > 0 && free > (best?.free ?? 0) { best = (index, free) }
        }
        return best?.index
    }

    /// Gives the job another attempt, or ends it when none is left.
    private mutating func requeue(_ key: JobKey, cause: String, now: Instant) -> [BrokerOutput] {
        guard var job = jobs[key] else { return [] }
        job.lastCause = cause
        if Int(job.attempt) >= config.maxAttempts {
            stats.exhausted += 1
            let body = Array("gave up after \(job.attempt) attempt\(job.attempt == 1 ? "" : "s"): the last ended because \(cause)".utf8)
            let result = ResultMessage(status: .exhausted, attempt: job.attempt, clientID: key.clientID, jobID: key.jobID, body: body)
            return finish(key, at: jobs.index(forKey: key), with: result, now: now)
        }
        stats.requeued += 1
        job.attempt += 1
        job.worker = nil
        job.leaseUntil = nil
        jobs[key] = job
        queue.prepend(key)
        return []
    }

    /// Ends a job with `result`, remembers the outcome for resubmissions, and returns the
    /// message to its client. `index`: the job's place in `jobs`, found by the caller.
    private mutating func finish(_ key: JobKey, at index: [JobKey: Job].Index?, with result: ResultMessage, now: Instant) -> [BrokerOutput] {
        let client = index.map { jobs.remove(at: $0).value.message.clientID } ?? result.clientID
        stats.completed += 1
        let expires = now + config.resultTTL
        if let replaced = finished.updateValue((result, expires), forKey: key) { finishedBytes -= Self.size(replaced.result) }
        finishedBytes += Self.size(result)
        finishedOrder.append((key, expires))
        while finishedOrder.count > finishedLimit || finishedBytes > finishedByteLimit, let oldest = finishedOrder.popFirst() {
            forget(oldest)
        }
        return [.toClient(client, result)]
    }

    /// Drops a cached outcome unless a later run of the same job id replaced it.
    private mutating func forget(_ entry: (key: JobKey, expires: Instant)) {
        if let index = finished.index(forKey: entry.key), finished.values[index].expires == entry.expires {
            finishedBytes -= Self.size(finished.remove(at: index).value.result)
        }
    }

    /// The bytes a cached outcome holds, about as on the wire.
    private static func size(_ result: ResultMessage) -> Int { 16 + result.clientID.count + result.jobID.count + result.body.count }

    /// The job gauges; after every dispatch, so cheap.
    private mutating func updateGauges() {
        stats.jobs = jobs.count
        stats.queued = queue.count
    }

    /// The worker gauge, which walks the workers: only when one comes, goes or drains.
    private mutating func updateWorkerGauge() {
        stats.workers = readyWorkers
    }
}
