import Foundation
import ZMQ
@testable import TaskMesh

/// A reliable-mode worker driven by hand, on a thread of its own: a DEALER that says READY with
/// `credit`, sends a HEARTBEAT reporting `held` jobs at every turn (about every 50 ms when idle,
/// when `heartbeats` is on), and answers each job it receives with what `answer` returns (nil:
/// no answer, the job is swallowed), and says READY again when the broker answers DISCONNECT. It
/// stops when `stop()` is called; every job it received is counted.
final class RawBrokerWorker: Sendable {
    private let stopRequested = Shared(false)
    private let done = Shared(false)
    private let receivedCount = Shared(0)

    /// Jobs received so far (first attempts and later ones).
    var received: Int { receivedCount.value }

    init(_ context: Context, id: String, connectingTo endpoint: String, credit: UInt16, heartbeats: Bool = true,
         held: UInt32 = 0, answer: @escaping @Sendable (JobMessage) -> ResultMessage?) throws {
        let socket = try Socket(context, .dealer)
        try socket.connect(endpoint)
        try socket.set(.sendTimeout, .seconds(5))
        try socket.set(.receiveTimeout, .milliseconds(50))
        try socket.send(ReadyMessage(workerID: Array(id.utf8), concurrency: credit).encode())
        nonisolated(unsafe) let unshared = socket
        let (stopRequested, done, receivedCount) = (stopRequested, done, receivedCount)
        Thread.detachNewThread {
            while !stopRequested.value {
                if heartbeats { try? unshared.send(WorkerHeartbeat(held: held).encode()) }
                guard let frames = try? unshared.receive(maxFrames: 1) else { continue }
                var jobs: [JobMessage] = []
                switch try? FromBroker.decode(frames[0]) {
                case .job(let job)?: jobs = [job]
                case .jobs(let batch)?: try? batch.forEach { jobs.append($0) }
                case .disconnect?:  // the broker took it for gone: announce again, as a worker does
                    try? unshared.send(ReadyMessage(workerID: Array(id.utf8), concurrency: credit).encode())
                    continue
                default: continue
                }
                receivedCount.update { $0 += jobs.count }
                for job in jobs {
                    if let result = answer(job) { try? unshared.send(result.encode()) }
                }
            }
            unshared.close()
            done.publish(true)
        }
    }

    /// An answer of `ok` with the job's payload, for `answer`.
    static let echo: @Sendable (JobMessage) -> ResultMessage? = { job in
        ResultMessage(status: .ok, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: job.payload)
    }

    /// Stops the thread and closes the socket; returns once both are done.
    func stop() async throws {
        stopRequested.publish(true)
        try await eventually("the raw worker stopped") { done.value }
    }
}
