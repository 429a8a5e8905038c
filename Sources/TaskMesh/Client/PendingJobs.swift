import DequeModule
import HeapModule

/// The client's bookkeeping of its jobs: which are waiting to be sent, which are in flight, and
/// when each expires. It decides every job's single outcome; anything arriving for a job that has
/// already ended is reported as late or duplicate and dropped. Owned by the client loop.
struct PendingJobs {
    struct Entry {
        let submission: Submission
        var sent: Bool
    }

    private struct Expiry: Comparable {
        let at: Instant
        let jobID: [UInt8]
        static func < (a: Expiry, b: Expiry) -> Bool { a.at < b.at }
        static func == (a: Expiry, b: Expiry) -> Bool { a.at == b.at && a.jobID == b.jobID }
    }

    private(set) var entries: [[UInt8]: Entry] = [:]
    /// Job ids waiting to be sent, oldest first.
    private(set) var outbox = Deque<[UInt8]>()
    private var expiries = Heap<Expiry>()

    var count: Int { entries.count }

    /// Adds a job to send. Returns false (and adds nothing) when a job with its id is pending.
    mutating func add(_ submission: Submission) -> Bool {
        guard entries[submission.jobID] == nil else { return false }
        entries[submission.jobID] = Entry(submission: submission, sent: false)
        outbox.append(submission.jobID)
        expiries.insert(Expiry(at: submission.deadline, jobID: submission.jobID))
        return true
    }

    /// The next job to send, if any; skips ids whose job already ended.
    mutating func nextToSend() -> Submission? {
        while let id = outbox.first {
            if let entry = entries[id], !entry.sent { return entry.submission }
            outbox.removeFirst()
        }
        return nil
    }

    /// Records that the job returned by `nextToSend()` left the client.
    mutating func markSent() {
        let id = outbox.removeFirst()
        entries[id]?.sent = true
    }

    /// Puts an unstarted job back at the front of the queue, to go to another worker.
    mutating func requeue(_ jobID: [UInt8]) -> Bool {
        guard entries[jobID] != nil else { return false }
        entries[jobID]?.sent = false
        outbox.prepend(jobID)
        return true
    }

    /// Puts every job that was sent and has not ended back in the queue, oldest first, to be
    /// sent again under the same id (reliable mode, after the broker was lost). Returns how many.
    mutating func requeueAllSent() -> Int {
        let sent = entries.values.filter(\.sent).sorted { $0.submission.deadline < $1.submission.deadline }
        for entry in sent.reversed() {
            entries[entry.submission.jobID]?.sent = false
            outbox.prepend(entry.submission.jobID)
        }
        return sent.count
    }

    /// Ends a job: removes it and returns its entry; nil when it had already ended.
    mutating func finish(_ jobID: [UInt8]) -> Entry? {
        let entry = entries.removeValue(forKey: jobID)
        compactIfSparse()
        return entry
    }

    /// Finished jobs leave their expiry (and, if never sent, their outbox slot) behind. Stale
    /// expiries at the top are dropped at once, so `nextDeadline` is always a pending job's; the
    /// heap and the outbox are rebuilt when most of them is stale, so memory follows the number
    /// of pending jobs, not the throughput times the deadline.
    private mutating func compactIfSparse() {
        while let top = expiries.min, entries[top.jobID]?.submission.deadline != top.at {
            expiries.removeMin()
        }
        if expiries.count > 4096 && expiries.count > 2 * entries.count {
            expiries = Heap(entries.values.map { Expiry(at: $0.submission.deadline, jobID: $0.submission.jobID) })
        }
        if outbox.count > 4096 && outbox.count > 2 * entries.count {
            outbox = Deque(outbox.filter { entries[$0]?.sent == false })
        }
    }

    /// Removes and returns the jobs whose deadline is at or before `now`.
    mutating func expire(at now: Instant) -> [Entry] {
        var expired: [Entry] = []
        while let next = expiries.min, next.at <= now {
            expiries.removeMin()
            if let entry = entries[next.jobID], entry.submission.deadline == next.at {
                entries.removeValue(forKey: next.jobID)
                expired.append(entry)
            }
        }
        compactIfSparse()
        return expired
    }

    /// The earliest deadline still pending; nil when nothing is.
    var nextDeadline: Instant? {
        expiries.min?.at
    }

    /// Removes every job (the client is closing).
    mutating func removeAll() -> [Entry] {
        defer {
            entries.removeAll()
            outbox.removeAll()
            expiries = Heap()
        }
        return Array(entries.values)
    }
}
