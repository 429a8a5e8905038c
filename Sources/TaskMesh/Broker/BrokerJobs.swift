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

/// Every job the broker knows: live ones (queued or running) in numbered slots of one array,
/// finished ones as cached outcomes in a queue, oldest first, until they expire or the cache is
/// full. Both are found by client and job id through a `JobIndex` per client: a client's ids
/// are mostly a counter, so finding, adding and removing one hashes no bytes and stays in cache.
///
/// A slot is freed as soon as its job finishes and reused first, so the few slots in use stay
/// in cache however many outcomes are remembered; the outcome cache is written in order and
/// read (for eviction) in order.
struct BrokerJobs {
    enum Phase: UInt8 {
        /// `waiting`: its last attempt failed with `retry`; it is held until `retryAt`.
        case free, queued, running, waiting
    }

    struct Slot {
        var phase: Phase = .free
        /// The job as submitted (its `deadline` field as the client wrote it; `deadline` below is
        /// what counts).
        var message: JobMessage
        /// The number of the current attempt, from 1. Results carrying another number are stale.
        var attempt: UInt16 = 1
        /// The worker connection (`BrokerState.WorkerSlot.holder`) running the current attempt;
        /// 0 when none does.
        var holder: UInt32 = 0
        var leaseUntil: Instant?
        /// When it was submitted; kept when it is requeued, so that it ages as one job.
        var queuedAt: Instant
        /// The owning client's record.
        var client: Int32 = -1
        /// Its deadline by the broker's monotonic clock, fixed at submission
        /// (`WireDeadline.local`); nil for none. Dispatch writes the time left until it.
        var deadline: Instant?
        /// Its submitter sent CANCEL while it ran: whatever its worker answers, it ends
        /// `cancelled`, and it is never run again.
        var cancelRequested = false
        /// The connection (`holder`) whose attempt asked for a retry: the next attempt goes to
        /// another worker when one that can run it has a free slot at dispatch. 0: none.
        var avoid: UInt32 = 0
        /// Set with `avoid` when that connection let the attempt overrun its lease: the next
        /// attempt waits for another worker that can run it rather than go back there.
        var avoidStrictly = false
    }

    /// What a job id names.
    enum Found {
        case live(Int32)
        case finished(ResultMessage)
    }

    private struct Outcome {
        let client: Int32
        let result: ResultMessage
        let expires: Instant
    }

    private struct ClientRecord {
        var id: [UInt8]
        var jobs = JobIndex()
    }

    private(set) var slots: [Slot] = []
    private var freeSlots: [Int32] = []
    private var outcomes = Deque<Outcome>()
    /// The sequence number of `outcomes.first`; each outcome's number, modulo `sequenceSpan`,
    /// is what the index holds for it, above `sequenceSpan`.
    private var firstSequence: UInt64 = 0
    private var clients: [ClientRecord] = []
    private var freeClients: [Int32] = []
    private var clientsByID: [[UInt8]: Int32] = [:]
    /// The client record used last: jobs and results come in runs for one client.
    private var lastClient: (id: [UInt8], record: Int32)?
    /// Jobs queued or running.
    private(set) var liveCount = 0
    /// The bytes the cached outcomes hold, about as on the wire.
    private(set) var outcomeBytes = 0

    /// Index values below this are live slots; from it up, cached outcomes.
    private static let sequenceSpan: Int32 = 1 << 30
    private static let emptyMessage = JobMessage(clientID: [], jobID: [], handler: "", deadline: 0, attempt: 0, payload: [])

    var outcomeCount: Int { outcomes.count }
    /// When the oldest cached outcome expires.
    var oldestOutcomeExpiry: Instant? { outcomes.first?.expires }

    subscript(slot: Int32) -> Slot {
        _read { yield slots[Int(slot)] }
        _modify { yield &slots[Int(slot)] }
    }

    /// The live job or the cached outcome named by `jobID` of client `clientID`.
    mutating func find(clientID: [UInt8], jobID: [UInt8]) -> Found? {
        guard let record = record(of: clientID), let value = clients[Int(record)].jobs[jobID] else { return nil }
        if value < Self.sequenceSpan { return .live(value) }
        let offset = (UInt64(value - Self.sequenceSpan) &- firstSequence) & UInt64(Self.sequenceSpan - 1)
        return .finished(outcomes[Int(offset)].result)
    }

    /// Adds `message` as a job queued at `now`, attempt 1, ending at `deadline` (nil: never).
    /// The caller has checked that its id is not known.
    mutating func add(_ message: JobMessage, now: Instant, deadline: Instant? = nil) -> Int32 {
        let record = record(of: message.clientID) ?? newRecord(for: message.clientID)
        let slot: Int32
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[Int(slot)] = Slot(phase: .queued, message: message, queuedAt: now, client: record, deadline: deadline)
        } else {
            slot = Int32(slots.count)
            precondition(slot < Self.sequenceSpan, "more live jobs than the broker can number")
            slots.append(Slot(phase: .queued, message: message, queuedAt: now, client: record, deadline: deadline))
        }
        let inserted = clients[Int(record)].jobs.insert(message.jobID, slot: slot)
        assert(inserted, "a job added twice")
        liveCount += 1
        return slot
    }

    /// Ends a live job: its slot is freed and `outcome` is cached under its id, newest last,
    /// until `forgetOldest()`.
    mutating func finish(_ slot: Int32, outcome: ResultMessage, expires: Instant) {
        let index = Int(slot)
        assert(slots[index].phase != .free)
        let record = slots[index].client
        let sequence = firstSequence &+ UInt64(outcomes.count)
        let code = Self.sequenceSpan + Int32(truncatingIfNeeded: sequence & UInt64(Self.sequenceSpan - 1))
        let replaced = clients[Int(record)].jobs.replace(slots[index].message.jobID, with: code)
        assert(replaced == slot)
        outcomes.append(Outcome(client: record, result: outcome, expires: expires))
        outcomeBytes += Self.size(outcome)
        slots[index] = Slot(message: Self.emptyMessage, queuedAt: slots[index].queuedAt)
        freeSlots.append(slot)
        liveCount -= 1
        if liveCount == 0 && slots.count > 1024 {
            // Nothing is live: give the slots' memory back.
            slots = []
            freeSlots = []
        }
    }

    /// Forgets the oldest cached outcome: its job id may run again.
    mutating func forgetOldest() {
        guard let oldest = outcomes.popFirst() else { return }
        let removed = clients[Int(oldest.client)].jobs.remove(oldest.result.jobID)
        assert(removed.map { $0 >= Self.sequenceSpan } ?? false, "a cached outcome's id named a live job")
        firstSequence &+= 1
        outcomeBytes -= Self.size(oldest.result)
        if clients[Int(oldest.client)].jobs.isEmpty { dropRecord(oldest.client) }
    }

    /// Every slot in `phase`, in slot order.
    func slots(in phase: Phase) -> [Int32] {
        slots.indices.lazy.filter { self.slots[$0].phase == phase }.map { Int32($0) }
    }

    /// The bytes a cached outcome holds, about as on the wire.
    private static func size(_ result: ResultMessage) -> Int { 16 + result.clientID.count + result.jobID.count + result.body.count }

    private mutating func record(of clientID: [UInt8]) -> Int32? {
        if let lastClient, lastClient.id == clientID { return lastClient.record }
        guard let record = clientsByID[clientID] else { return nil }
        lastClient = (clientID, record)
        return record
    }

    private mutating func newRecord(for clientID: [UInt8]) -> Int32 {
        let record: Int32
        if let reused = freeClients.popLast() {
            record = reused
            clients[Int(record)] = ClientRecord(id: clientID)
        } else {
            record = Int32(clients.count)
            clients.append(ClientRecord(id: clientID))
        }
        clientsByID[clientID] = record
        lastClient = (clientID, record)
        return record
    }

    private mutating func dropRecord(_ record: Int32) {
        clientsByID.removeValue(forKey: clients[Int(record)].id)
        clients[Int(record)] = ClientRecord(id: [])
        freeClients.append(record)
        if lastClient?.record == record { lastClient = nil }
    }
}
