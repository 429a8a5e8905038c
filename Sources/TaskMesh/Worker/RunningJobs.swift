import Synchronization

/// What each of a worker's runner tasks is running, so that the loop can cancel a handler:
/// when its submitter sends CANCEL, or when its deadline passes. Cancelling means cancelling the
/// runner's task, which Swift cannot undo; so a runner whose job was cancelled retires once the
/// handler returns, and a fresh runner takes its place.
final class RunningJobs: Sendable {
    /// Why a running job was cancelled.
    enum Reason: Sendable, Equatable {
        case cancelled
        case deadline
    }

    private struct Slot {
        var task: Task<Void, Never>?
        var clientID: [UInt8] = []
        var jobID: [UInt8] = []
        var running = false
        var deadline: Instant = JobRunner.noDeadline
        var hasDeadline = false
        var cancelled: Reason?
        /// When it was cancelled, and whether the loop has reported that it ignores that.
        var cancelledAt: Instant = JobRunner.noDeadline
        var reportedIgnoring = false
        /// Cancellation asked for before the runner's task handle was stored.
        var cancelOnStart = false
    }

    private let slots: Mutex<[Slot]>

    init(runners: Int) { slots = Mutex(Array(repeating: Slot(), count: runners)) }

    /// The creator's side: the task that serves `slot`.
    func attach(_ task: Task<Void, Never>, to slot: Int) {
        let cancelNow = slots.withLock { slots -> Bool in
            slots[slot].task = task
            return slots[slot].cancelOnStart
        }
        if cancelNow { task.cancel() }
    }

    /// A runner's side: it starts `job`.
    func begin(_ slot: Int, clientID: [UInt8], jobID: [UInt8], deadline: Instant, hasDeadline: Bool) {
        slots.withLock { slots in
            slots[slot].clientID = clientID
            slots[slot].jobID = jobID
            slots[slot].deadline = deadline
            slots[slot].hasDeadline = hasDeadline
            slots[slot].running = true
        }
    }

    /// A runner's side: its job ended; why it was cancelled, if it was (the runner then retires).
    func end(_ slot: Int) -> Reason? {
        slots.withLock { slots in
            slots[slot].running = false
            return slots[slot].cancelled
        }
    }

    /// A retiring runner's side: the slot is free for its replacement.
    func reset(_ slot: Int) {
        slots.withLock { $0[slot] = Slot() }
    }

    /// The loop's side: cancels the running job of that client and id; false when none runs.
    func cancel(clientID: [UInt8], jobID: [UInt8], at now: Instant) -> Bool {
        let task: Task<Void, Never>?? = slots.withLock { slots in
            guard let index = slots.indices.first(where: {
                slots[$0].running && slots[$0].cancelled == nil && slots[$0].jobID == jobID && slots[$0].clientID == clientID
            }) else { return nil }
            return .some(Self.markCancelled(&slots[index], .cancelled, at: now))
        }
        guard let task else { return false }
        task?.cancel()
        return true
    }

    private static func markCancelled(_ slot: inout Slot, _ reason: Reason, at now: Instant) -> Task<Void, Never>? {
        slot.cancelled = reason
        slot.cancelledAt = now
        if slot.task == nil { slot.cancelOnStart = true }
        return slot.task
    }

    /// What `overdue(at:)` found.
    struct Sweep {
        /// Jobs cancelled now for their deadline.
        var cancelled: [(clientID: [UInt8], jobID: [UInt8])] = []
        /// Jobs cancelled at least `grace` ago whose handler has not returned (each reported once).
        var ignoring: [(clientID: [UInt8], jobID: [UInt8])] = []
        /// The earliest deadline still ahead, or a running cancelled job's report time.
        var next: Instant?
    }

    /// The loop's side: cancels every running job whose deadline has passed.
    func overdue(at now: Instant, grace: Duration) -> Sweep {
        var sweep = Sweep()
        var tasks: [Task<Void, Never>] = []
        slots.withLock { slots in
            for index in slots.indices where slots[index].running {
                if let _ = slots[index].cancelled {
                    if !slots[index].reportedIgnoring {
                        if now - slots[index].cancelledAt >= grace {
                            slots[index].reportedIgnoring = true
                            sweep.ignoring.append((slots[index].clientID, slots[index].jobID))
                        } else {
                            sweep.next = Self.earlier(sweep.next, slots[index].cancelledAt + grace)
                        }
                    }
                    continue
                }
                guard slots[index].hasDeadline else { continue }
                if slots[index].deadline <= now {
                    if let task = Self.markCancelled(&slots[index], .deadline, at: now) { tasks.append(task) }
                    sweep.cancelled.append((slots[index].clientID, slots[index].jobID))
                    sweep.next = Self.earlier(sweep.next, now + grace)
                } else {
                    sweep.next = Self.earlier(sweep.next, slots[index].deadline)
                }
            }
        }
        for task in tasks { task.cancel() }
        return sweep
    }

    private static func earlier(_ a: Instant?, _ b: Instant) -> Instant { a.map { min($0, b) } ?? b }
}
