/// Every job the broker knows, queued, running or finished (its outcome cached for resubmissions),
/// each in a numbered slot of one array, found by its client and job id through a `JobIndex` per
/// client. A client's ids are mostly a counter, so finding, adding and removing one hashes no
/// bytes and stays in cache; a slot's number is stable while the job is known, so the queue and
/// the outcome cache hold four-byte numbers instead of keys.
struct BrokerJobs {
    enum Phase: UInt8 {
        case free, queued, running, finished
    }

    struct Slot {
        var phase: Phase = .free
        /// The job as submitted; once finished only its client and job id are kept.
        var message: JobMessage
        /// The number of the current attempt, from 1. Results carrying another number are stale.
        var attempt: UInt16 = 1
        /// The worker connection (`BrokerState.WorkerSlot.holder`) running the current attempt;
        /// 0 when none does.
        var holder: UInt32 = 0
        var leaseUntil: Instant?
        /// The outcome of a finished job, and when the cache forgets it.
        var outcome: ResultMessage?
        var expires: Instant?
        /// The owning client's record.
        var client: Int32 = -1
    }

    private struct ClientRecord {
        var id: [UInt8]
        var jobs = JobIndex()
    }

    private(set) var slots: [Slot] = []
    private var freeSlots: [Int32] = []
    private var clients: [ClientRecord] = []
    private var freeClients: [Int32] = []
    private var clientsByID: [[UInt8]: Int32] = [:]
    /// The client record used last: jobs and results come in runs for one client.
    private var lastClient: (id: [UInt8], record: Int32)?
    /// Jobs queued or running.
    private(set) var liveCount = 0

    private static let emptyMessage = JobMessage(clientID: [], jobID: [], handler: "", deadline: 0, attempt: 0, payload: [])

    subscript(slot: Int32) -> Slot {
        get { slots[Int(slot)] }
        _modify { yield &slots[Int(slot)] }
    }

    /// The slot of the job `jobID` of client `clientID`, in any phase but free.
    mutating func find(clientID: [UInt8], jobID: [UInt8]) -> Int32? {
        guard let record = record(of: clientID) else { return nil }
        return clients[Int(record)].jobs[jobID]
    }

    /// Adds `message` as a queued job, attempt 1. The caller has checked that its id is not known.
    mutating func add(_ message: JobMessage) -> Int32 {
        let record = record(of: message.clientID) ?? newRecord(for: message.clientID)
        let slot: Int32
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[Int(slot)] = Slot(phase: .queued, message: message, client: record)
        } else {
            slot = Int32(slots.count)
            slots.append(Slot(phase: .queued, message: message, client: record))
        }
        let inserted = clients[Int(record)].jobs.insert(message.jobID, slot: slot)
        assert(inserted, "a job added twice")
        liveCount += 1
        return slot
    }

    /// Ends a live job: it keeps only its ids and `outcome` until `remove(_:)`.
    mutating func finish(_ slot: Int32, outcome: ResultMessage, expires: Instant) {
        let index = Int(slot)
        assert(slots[index].phase == .queued || slots[index].phase == .running)
        slots[index].message.payload = []
        slots[index].message.handler = ""
        slots[index].phase = .finished
        slots[index].holder = 0
        slots[index].leaseUntil = nil
        slots[index].outcome = outcome
        slots[index].expires = expires
        liveCount -= 1
    }

    /// Forgets a finished job: its id may run again.
    mutating func remove(_ slot: Int32) {
        let index = Int(slot)
        assert(slots[index].phase == .finished, "only finished jobs are forgotten")
        let record = slots[index].client
        let removed = clients[Int(record)].jobs.remove(slots[index].message.jobID)
        assert(removed == slot)
        slots[index] = Slot(message: Self.emptyMessage)
        freeSlots.append(slot)
        if clients[Int(record)].jobs.isEmpty { dropRecord(record) }
        if freeSlots.count == slots.count && slots.count > 1024 {
            // Nothing is held: give the memory back.
            slots = []
            freeSlots = []
        }
    }

    /// Every slot in `phase`, in slot order.
    func slots(in phase: Phase) -> [Int32] {
        slots.indices.lazy.filter { self.slots[$0].phase == phase }.map { Int32($0) }
    }

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
