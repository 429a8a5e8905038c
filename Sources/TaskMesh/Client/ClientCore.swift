import Synchronization

/// The state a `Client` shares with its loop thread.
final class ClientCore: Sendable {
    let clientID: [UInt8]
    let thread: LoopThread
    let inbox = Shared(ClientInbox())
    let stats = Shared(ClientStats())
    /// Jobs accepted and not yet ended, for the `max_pending` bound.
    let pendingCount = Atomic<Int>(0)
    let closed = Atomic<Bool>(false)
    private let sequence = Atomic<UInt64>(0)

    init(clientID: [UInt8]) throws {
        self.clientID = clientID
        self.thread = try LoopThread()
    }

    /// A new job id, unique within this client: a big-endian counter.
    func nextJobID() -> [UInt8] {
        let n = sequence.add(1, ordering: .relaxed).newValue
        return withUnsafeBytes(of: n.bigEndian) { Array($0) }
    }

    func submit(_ submission: Submission) {
        let wasEmpty = inbox.update { inbox -> Bool in
            let empty = inbox.isEmpty
            inbox.submissions.append(submission)
            return empty
        }
        if wasEmpty { thread.signal.notify() }
    }

    func cancel(_ jobID: [UInt8]) {
        let wasEmpty = inbox.update { inbox -> Bool in
            let empty = inbox.isEmpty
            inbox.cancellations.append(jobID)
            return empty
        }
        if wasEmpty { thread.signal.notify() }
    }
}
