import Synchronization

/// The state a `Client` shares with its loop thread.
final class ClientCore: Sendable {
    let clientID: [UInt8]
    /// `client.spin_wait`.
    let spinWait: Duration
    let thread: LoopThread
    let inbox = Shared(ClientInbox())
    let stats = Shared(ClientStats())
    /// Direct mode: what each worker this client sends to advertises; published when the
    /// membership changes, for `Client.waitForWorkers(_:handling:timeout:)`.
    let workerCapabilities = Shared<[Capabilities]>([])
    /// Jobs accepted and not yet ended, for the `max_pending` bound.
    let pendingCount = Atomic<Int>(0)
    let closed = Atomic<Bool>(false)
    private let sequence = Atomic<UInt64>(0)

    init(clientID: [UInt8], spinWait: Duration = .zero) throws {
        self.clientID = clientID
        self.spinWait = spinWait
        self.thread = try LoopThread()
    }

    /// `client.spin_wait` as this machine can use it: zero with a single processor, where the
    /// spinning caller would hold the CPU the result needs to arrive, and never more than
    /// `Topology.Client.maximumSpinWait` (a topology built in code is not checked by the loader).
    static func spinWait(configured: Duration, processors: Int) -> Duration {
        processors > 1 ? min(max(.zero, configured), Topology.Client.maximumSpinWait) : .zero
    }

    /// How long a caller about to await a job should check for its outcome before suspending:
    /// `spinWait` when that job is the only one pending (a caller running one job at a time, whose
    /// result is the next thing this client expects), else zero (with more in flight, the awaited
    /// one may be far back, and a spinning caller would take CPU from the jobs ahead of it).
    var spinBudget: Duration {
        pendingCount.load(ordering: .relaxed) == 1 ? spinWait : .zero
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
