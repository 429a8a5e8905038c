import Synchronization

/// What each of a worker's runner tasks is running, so that the loop can cancel a handler:
/// when its submitter sends CANCEL, or when its deadline passes. Cancelling means cancelling the
/// runner's task, which Swift cannot undo; so a runner whose job was cancelled retires once the
/// handler returns, and a fresh runner takes its place.
///
/// Each runner has a slot of its own, with a lock of its own: runners never contend with each
/// other, and a runner takes its lock twice per job it can interrupt (`begin`, `idle`) and never for others; only the loop, on a
/// CANCEL or a deadline sweep, looks at every slot.
final class RunningJobs: Sendable {
    /// Why a running job was cancelled.
    enum Reason: Sendable, Equatable {
        case cancelled
        case deadline
    }

    /// One slot per runner.
    let slots: [RunnerSlot]
    /// CANCELs for jobs on their way from the run queue to a runner (taken, not yet in a slot):
    /// the runner finds them before it starts the job. Few and short-lived; `earlyCount` keeps
    /// the runners' check per job to one atomic load.
    private let early = Mutex<[(clientID: [UInt8], jobID: [UInt8], at: Instant)]>([])
    /// How long a cancel on arrival is kept: a runner that took a job starts it long before;
    /// one left longer was for a job that had already ended (its answer crossed the CANCEL).
    static let earlyRetention: Duration = .seconds(5)
    private let earlyCount = Atomic<Int>(0)

    init(runners: Int) { slots = (0..<runners).map { _ in RunnerSlot() } }

    /// The loop's side: cancels the running job of that client and id; false when none runs.
    func cancel(clientID: [UInt8], jobID: [UInt8], at now: Instant) -> Bool {
        for slot in slots where slot.cancel(clientID: clientID, jobID: jobID, at: now) { return true }
        return false
    }

    /// The loop's side: the job is accepted and in no queue and no slot: a runner has taken it
    /// and not started it yet. It is cancelled when that runner gets to it.
    func cancelOnArrival(clientID: [UInt8], jobID: [UInt8], at now: Instant) {
        early.withLock { $0.append((clientID, jobID, now)) }
        earlyCount.add(1, ordering: .releasing)
        forgetEarly(before: now - Self.earlyRetention)
    }

    /// The loop's side, on its sweeps: drops cancels on arrival that no runner took in time.
    func forgetEarly(before limit: Instant) {
        guard earlyCount.load(ordering: .acquiring) > 0 else { return }
        let dropped = early.withLock { early -> Int in
            let before = early.count
            early.removeAll { $0.at < limit }
            return before - early.count
        }
        if dropped > 0 { earlyCount.subtract(dropped, ordering: .releasing) }
    }

    /// A runner's side, before it starts a job: whether the job was cancelled on its way.
    func takeCancelOnArrival(clientID: [UInt8], jobID: [UInt8]) -> Bool {
        guard earlyCount.load(ordering: .acquiring) > 0 else { return false }
        return forget(clientID: clientID, jobID: jobID)
    }

    /// The loop's side, when a job ends: a cancel on arrival left for it goes (it arrived too
    /// late: the job had already ended).
    func jobEnded(clientID: [UInt8], jobID: [UInt8]) {
        guard earlyCount.load(ordering: .acquiring) > 0 else { return }
        _ = forget(clientID: clientID, jobID: jobID)
    }

    private func forget(clientID: [UInt8], jobID: [UInt8]) -> Bool {
        let found = early.withLock { early -> Bool in
            guard let index = early.firstIndex(where: { $0.jobID == jobID && $0.clientID == clientID }) else { return false }
            early.remove(at: index)
            return true
        }
        if found { earlyCount.subtract(1, ordering: .releasing) }
        return found
    }

    /// What `overdue(at:grace:)` found.
    struct Sweep {
        /// Jobs cancelled now for their deadline.
        var cancelled: [(clientID: [UInt8], jobID: [UInt8])] = []
        /// Jobs cancelled at least `grace` ago whose handler has not returned (each reported once).
        var ignoring: [(clientID: [UInt8], jobID: [UInt8])] = []
        /// The earliest deadline still ahead, or a running cancelled job's report time.
        var next: Instant?

        mutating func consider(_ instant: Instant) { next = next.map { min($0, instant) } ?? instant }
    }

    /// The loop's side: cancels every running job whose deadline has passed, and reports those
    /// still running `grace` after their cancellation.
    func overdue(at now: Instant, grace: Duration) -> Sweep {
        var sweep = Sweep()
        for slot in slots { slot.sweep(into: &sweep, at: now, grace: grace) }
        return sweep
    }
}

/// One runner's slot: the job it runs (its ids and deadline) and the runner's task.
final class RunnerSlot: Sendable {
    private struct State {
        var task: Task<Void, Never>?
        var clientID: [UInt8] = []
        var jobID: [UInt8] = []
        var running = false
        var deadline: Instant = JobRunner.noDeadline
        var hasDeadline = false
        var cancelled: RunningJobs.Reason?
        /// When it was cancelled, and whether the loop has reported that it ignores that.
        var cancelledAt: Instant = JobRunner.noDeadline
        var reportedIgnoring = false
        /// Cancellation asked for before the runner's task handle was stored.
        var cancelOnStart = false

        mutating func markCancelled(_ reason: RunningJobs.Reason, at now: Instant) -> Task<Void, Never>? {
            cancelled = reason
            cancelledAt = now
            if task == nil { cancelOnStart = true }
            return task
        }
    }

    private let state = Mutex(State())

    /// The creator's side: the task that serves this slot (a fresh one after a retirement).
    func attach(_ task: Task<Void, Never>) {
        let cancelNow = state.withLock { state -> Bool in
            state.task = task
            return state.cancelOnStart
        }
        if cancelNow { task.cancel() }
    }

    /// The runner's side: it starts `job`. (The slot is never cancelled here: cancellation
    /// needs a running job, and `idle()` clears it before the next one starts.)
    func begin(_ job: borrowing JobRunner.Accepted) {
        let clientID = job.job.clientID, jobID = job.job.jobID, deadline = job.deadline, hasDeadline = job.hasDeadline
        state.withLock { state in
            state.clientID = clientID
            state.jobID = jobID
            state.deadline = deadline
            state.hasDeadline = hasDeadline
            state.running = true
        }
    }

    /// The runner's side: the job it ran ended and none waits. Returns why the job was
    /// cancelled, if it was (the runner then retires).
    func idle() -> RunningJobs.Reason? {
        state.withLock { state in
            if let reason = state.cancelled {
                state = State()
                return reason
            }
            state.running = false
            return nil
        }
    }

    /// The loop's side: cancels this slot's job if it is that one.
    func cancel(clientID: [UInt8], jobID: [UInt8], at now: Instant) -> Bool {
        let found: Task<Void, Never>?? = state.withLock { state in
            guard state.running, state.cancelled == nil, state.jobID == jobID, state.clientID == clientID else { return nil }
            return .some(state.markCancelled(.cancelled, at: now))
        }
        guard let found else { return false }
        found?.cancel()
        return true
    }

    fileprivate func sweep(into sweep: inout RunningJobs.Sweep, at now: Instant, grace: Duration) {
        var cancel: Task<Void, Never>?
        state.withLock { state in
            guard state.running else { return }
            if state.cancelled != nil {
                guard !state.reportedIgnoring else { return }
                if now - state.cancelledAt >= grace {
                    state.reportedIgnoring = true
                    sweep.ignoring.append((state.clientID, state.jobID))
                } else {
                    sweep.consider(state.cancelledAt + grace)
                }
                return
            }
            guard state.hasDeadline else { return }
            if state.deadline <= now {
                cancel = state.markCancelled(.deadline, at: now)
                sweep.cancelled.append((state.clientID, state.jobID))
                sweep.consider(now + grace)
            } else {
                sweep.consider(state.deadline)
            }
        }
        cancel?.cancel()
    }
}
