import Synchronization

/// The latest progress of each running job that reports any, between its handler (which may
/// report thousands of times a second) and the worker's loop (which sends at most one update
/// per job per `interval`, always the latest, and the last one before the job's result).
final class ProgressBoard: Sendable {
    /// How often at most one job's updates leave the worker.
    static let interval: Duration = .milliseconds(250)
    /// How long a finished job's entry stays, so that a late report from it is dropped.
    static let finishedRetention: Duration = .seconds(10)

    struct Key: Hashable, Sendable {
        let clientID: [UInt8]
        let jobID: [UInt8]
        let attempt: UInt16
    }

    private struct Entry {
        var pending: ProgressMessage?
        var lastSent: Instant?
        var finishedAt: Instant?
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var pendingCount = 0
    }

    private let state = Mutex(State())
    /// Entries held: lets the loop skip the lock for jobs that never reported.
    private let held = Atomic<Int>(0)
    private let wake: @Sendable () -> Void

    /// `wake` rouses the loop when a first update waits.
    init(wake: @escaping @Sendable () -> Void) { self.wake = wake }

    var isEmpty: Bool { held.load(ordering: .relaxed) == 0 }

    /// A handler's side: keeps `update` as its job's latest.
    func report(_ update: ProgressMessage) {
        let key = Key(clientID: update.clientID, jobID: update.jobID, attempt: update.attempt)
        let first = state.withLock { state -> Bool in
            var entry = state.entries[key] ?? {
                held.add(1, ordering: .relaxed)
                return Entry()
            }()
            guard entry.finishedAt == nil else { return false }
            let wasPending = entry.pending != nil
            entry.pending = update
            state.entries[key] = entry
            if wasPending { return false }
            state.pendingCount += 1
            return state.pendingCount == 1
        }
        if first { wake() }
    }

    /// The loop's side: the updates due now (each job's latest, if its last one left at least
    /// `interval` ago), and when the next one falls due.
    func due(at now: Instant) -> (updates: [ProgressMessage], next: Instant?) {
        guard !isEmpty else { return ([], nil) }
        return state.withLock { state in
            var updates: [ProgressMessage] = []
            var next: Instant?
            var purged: [Key] = []
            var finishedKept = false
            for (key, entry) in state.entries {
                if let finished = entry.finishedAt {
                    if now - finished > Self.finishedRetention { purged.append(key) } else { finishedKept = true }
                    continue
                }
                guard let update = entry.pending else { continue }
                if let last = entry.lastSent, now - last < Self.interval {
                    let at = last + Self.interval
                    next = next.map { min($0, at) } ?? at
                    continue
                }
                updates.append(update)
                state.entries[key]?.pending = nil
                state.entries[key]?.lastSent = now
                state.pendingCount -= 1
            }
            for key in purged { state.entries.removeValue(forKey: key) }
            if !purged.isEmpty { held.subtract(purged.count, ordering: .relaxed) }
            if finishedKept {
                let sweep = now + Self.finishedRetention
                next = next.map { min($0, sweep) } ?? sweep
            }
            return (updates, next)
        }
    }

    /// The loop's side, when the job's handler has returned: its update not yet sent, which
    /// must leave before the result. Later reports for it are dropped.
    func finish(clientID: [UInt8], jobID: [UInt8], attempt: UInt16, at now: Instant) -> ProgressMessage? {
        guard !isEmpty else { return nil }
        let key = Key(clientID: clientID, jobID: jobID, attempt: attempt)
        return state.withLock { state in
            guard var entry = state.entries[key], entry.finishedAt == nil else { return nil }
            let last = entry.pending
            if last != nil { state.pendingCount -= 1 }
            entry.pending = nil
            entry.finishedAt = now
            state.entries[key] = entry
            return last
        }
    }
}
