import DequeModule

/// A client's jobs waiting to be sent, by priority: the jobs of the highest priority that has
/// any leave first, oldest first within one priority. Holds `PendingJobs` tickets, which may be
/// stale (their job ended); `PendingJobs` skips those. Jobs no live worker can run now are
/// parked aside and put back, in order, when the membership changes.
struct Outbox<Ticket> {
    /// One queue per priority, index = priority (1...9; index 0 unused).
    private var levels: [Deque<Ticket>]
    /// No level above this holds a ticket.
    private var top = 0
    /// Tickets set aside with their priority, oldest first: no live worker can run them now.
    private(set) var parked: [(ticket: Ticket, priority: UInt8)] = []
    /// Tickets held back for the rest of one send pass: every worker that can run them is full.
    private(set) var held: [(ticket: Ticket, priority: UInt8)] = []

    init() {
        levels = Array(repeating: Deque<Ticket>(), count: Int(JobPriority.highest.value) + 1)
    }

    /// Every ticket queued (parked ones not counted).
    var count: Int { levels.reduce(0) { $0 + $1.count } }

    /// The tickets of the priority that leaves next, in order.
    var front: Deque<Ticket> {
        mutating get {
            settleTop()
            return levels[top]
        }
    }

    /// The priority of `front` (0 when empty).
    var frontPriority: UInt8 {
        mutating get {
            settleTop()
            return UInt8(top)
        }
    }

    /// The ticket that leaves next.
    var first: Ticket? {
        mutating get {
            settleTop()
            return levels[top].first
        }
    }

    mutating func append(_ ticket: Ticket, priority: UInt8) {
        let level = Int(priority)
        levels[level].append(ticket)
        if level > top { top = level }
    }

    /// Puts `ticket` first among its priority.
    mutating func prepend(_ ticket: Ticket, priority: UInt8) {
        let level = Int(priority)
        levels[level].prepend(ticket)
        if level > top { top = level }
    }

    /// Removes and returns the ticket `first` named.
    @discardableResult
    mutating func removeFirst() -> Ticket {
        settleTop()
        return levels[top].removeFirst()
    }

    /// Moves the ticket `first` named aside, to come back with `unparkAll()`.
    mutating func parkFirst() {
        let priority = frontPriority
        parked.append((removeFirst(), priority))
    }

    /// Puts every parked ticket back at the front of its priority, in the order parked.
    /// Returns how many.
    @discardableResult
    mutating func unparkAll() -> Int {
        let count = parked.count
        for entry in parked.reversed() { prepend(entry.ticket, priority: entry.priority) }
        parked.removeAll()
        return count
    }

    /// Moves the ticket `first` named aside until `releaseHeld()`.
    mutating func holdFirst() {
        let priority = frontPriority
        held.append((removeFirst(), priority))
    }

    /// Puts every held ticket back at the front of its priority, in the order held.
    mutating func releaseHeld() {
        guard !held.isEmpty else { return }
        for entry in held.reversed() { prepend(entry.ticket, priority: entry.priority) }
        held.removeAll(keepingCapacity: true)
    }

    /// Keeps the tickets (queued and parked) for which `keep` holds, in order.
    mutating func filter(_ keep: (Ticket) -> Bool) {
        for index in levels.indices where !levels[index].isEmpty {
            levels[index] = Deque(levels[index].filter(keep))
        }
        parked.removeAll { !keep($0.ticket) }
        held.removeAll { !keep($0.ticket) }
    }

    mutating func removeAll(keepingCapacity: Bool) {
        for index in levels.indices { levels[index].removeAll(keepingCapacity: keepingCapacity) }
        parked.removeAll()
        held.removeAll()
        top = 0
    }

    /// Lowers `top` past empty levels.
    private mutating func settleTop() {
        while top > 0 && levels[top].isEmpty { top -= 1 }
    }
}
