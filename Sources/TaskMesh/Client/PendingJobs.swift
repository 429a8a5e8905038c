import DequeModule

/// The client's bookkeeping of its jobs: which are waiting to be sent, which are in flight, and
/// when each expires. It decides every job's single outcome; anything arriving for a job that has
/// already ended is reported as late or duplicate and dropped. Owned by the client loop.
struct PendingJobs {
    struct Entry {
        let submission: Submission
        var sent: Bool
    }

    private var entries: [CompactJobID: Entry] = [:]
    /// Jobs waiting to be sent, oldest first.
    private(set) var outbox = Deque<CompactJobID>()
    private var expiries = ExpiryQueue<CompactJobID>()

    var count: Int { entries.count }

    /// The pending job with this id, if any.
    func entry(_ jobID: [UInt8]) -> Entry? { entries[CompactJobID(jobID)] }

    /// Adds a job to send. Returns false (and adds nothing) when a job with its id is pending.
    mutating func add(_ submission: Submission) -> Bool {
        let key = CompactJobID(submission.jobID)
        guard entries[key] == nil else { return false }
        entries[key] = Entry(submission: submission, sent: false)
        outbox.append(key)
        expiries.insert(at: submission.deadline, key: key)
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
        let key = CompactJobID(jobID)
        guard entries[key] != nil else { return false }
        entries[key]?.sent = false
        outbox.prepend(key)
        return true
    }

    /// Puts every job that was sent and has not ended back in the queue, oldest first, to be
    /// sent again under the same id (reliable mode, after the broker was lost). Returns how many.
    mutating func requeueAllSent() -> Int {
        let sent = entries.values.filter(\.sent).sorted { $0.submission.deadline < $1.submission.deadline }
        for entry in sent.reversed() {
            let key = CompactJobID(entry.submission.jobID)
            entries[key]?.sent = false
            outbox.prepend(key)
        }
        return sent.count
    }

    /// Ends a job: removes it and returns its entry; nil when it had already ended.
    mutating func finish(_ jobID: [UInt8]) -> Entry? {
        let entry = entries.removeValue(forKey: CompactJobID(jobID))
        compactIfSparse()
        return entry
    }

    /// Finished jobs leave their expiry (and, if never sent, their outbox slot) behind: removing
    /// it at once would cost a heap reordering per job. The heap and the outbox are rebuilt when
    /// most of them is stale, so memory follows the number of pending jobs, not the throughput
    /// times the deadline; stale expiries that reach the top first are dropped by `expire`.
    private mutating func compactIfSparse() {
        if entries.isEmpty {
            expiries = ExpiryQueue()
            outbox.removeAll()
            return
        }
        if expiries.count > 4096 && expiries.count > 4 * entries.count {
            expiries = ExpiryQueue(entries.map { .init(at: $0.value.submission.deadline, key: $0.key) })
        }
        if outbox.count > 4096 && outbox.count > 2 * entries.count {
            outbox = Deque(outbox.filter { entries[$0]?.sent == false })
        }
    }

    /// Removes and returns the jobs whose deadline is at or before `now`.
    mutating func expire(at now: Instant) -> [Entry] {
        var expired: [Entry] = []
        while let next = expiries.first, next.at <= now {
            expiries.removeFirst()
            if let entry = entries[next.key], entry.submission.deadline == next.at {
                entries.removeValue(forKey: next.key)
                expired.append(entry)
            }
        }
        compactIfSparse()
        return expired
    }

    /// When the loop must next call `expire`: never later than the earliest pending deadline,
    /// and nil when no job is pending. It may be a finished job's deadline, earlier than needed;
    /// that costs one wake-up that expires nothing.
    var nextDeadline: Instant? {
        entries.isEmpty ? nil : expiries.first?.at
    }

    /// Removes every job (the client is closing).
    mutating func removeAll() -> [Entry] {
        defer {
            entries.removeAll()
            outbox.removeAll()
            expiries = ExpiryQueue()
        }
        return Array(entries.values)
    }
}
