import Foundation
import Logging
import ZMQ

/// Runs the jobs a worker's loop receives, in either mode: decodes them, answers at once what
/// needs no handler (bad request, unknown handler, declined while stopping), starts handlers as
/// tasks up to the loop's concurrency, and queues their RESULTs until the loop's socket takes
/// them. Owned by the loop thread; handlers report back through `completions` and `signal`.
final class JobRunner {
    /// Jobs whose deadline passed longer ago than this are skipped unread: the tolerance covers
    /// clock differences between client and worker hosts.
    static let clockSkewTolerance: UInt64 = 1000

    private let handlers: Handlers
    private let limit: Int
    private let completions = Shared<[[[UInt8]]]>([])
    private let signal: Signal
    private let executionLog: ExecutionLog?
    private let published: Shared<WorkerStats>
    /// Secure direct mode: a JOB's client id must be the key its sender proved.
    private let checksSender: Bool
    private let logger: Logger

    var stats = WorkerStats()
    private(set) var inFlight = 0
    private var pendingResults: [[[UInt8]]] = []

    init(handlers: Handlers, limit: Int, signal: Signal, executionLog: ExecutionLog?, checksSender: Bool = false,
         published: Shared<WorkerStats>, logger: Logger) {
        self.published = published
        self.checksSender = checksSender
        self.handlers = handlers
        self.limit = limit
        self.signal = signal
        self.executionLog = executionLog
        self.logger = logger
    }

    var hasResultsToSend: Bool { !pendingResults.isEmpty }

    /// Handles one received JOB. While `declining`, valid jobs are answered `declined` unstarted.
    /// `sender` is the ZAP user id of the connection it came on (secure direct mode).
    func accept(_ frames: [[UInt8]], declining: Bool, sender: String? = nil) {
        stats.received += 1
        let job: JobMessage
        do {
            job = try JobMessage.decode(frames)
        } catch {
            stats.malformed += 1
            if let ids = JobMessage.salvageIDs(frames) {
                reply(.badRequest, attempt: 1, clientID: ids.clientID, jobID: ids.jobID, body: Array("\(error)".utf8))
            }
            return
        }
        if checksSender && !RoleSecurity.identity(sender, owns: job.clientID) {
            stats.malformed += 1  // a client may only submit under its own key
            logger.warning("dropped a job whose client id is not its sender's key")
            return
        }
        if declining {
            stats.declined += 1
            reply(.declined, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: [])
            return
        }
        if job.deadline != 0 && wallClockMilliseconds() > job.deadline + Self.clockSkewTolerance {
            stats.expired += 1
            return
        }
        guard let run = handlers.table[job.handler] else {
            stats.unknownHandler += 1
            reply(.unknownHandler, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: Array(job.handler.utf8))
            return
        }
        inFlight += 1
        executionLog?.record(job)
        let input = Job(
            id: JobID(bytes: job.jobID), handler: job.handler, payload: job.payload, attempt: Int(job.attempt),
            deadline: job.deadline == 0 ? nil : Date(timeIntervalSince1970: Double(job.deadline) / 1000)
        )
        let completions = self.completions, signal = self.signal, limit = self.limit
        Task {
            var outcome = await run(input)
            if outcome.body.count > limit {
                outcome = HandlerOutcome(.failed, Array("the result of \(outcome.body.count) bytes exceeds limits.max_payload (\(limit) bytes)".utf8))
            }
            let frames = ResultMessage(status: outcome.status, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: outcome.body).encode()
            // Wake the loop only when the queue was empty: it takes the whole queue per wake-up.
            let wasEmpty = completions.update { queue -> Bool in
                defer { queue.append(frames) }
                return queue.isEmpty
            }
            if wasEmpty { signal.notify() }
        }
    }

    /// Makes the counters, with the jobs running now, visible to `Worker.stats`.
    func publishStats() {
        var snapshot = stats
        snapshot.inFlight = inFlight
        published.publish(snapshot)
    }

    /// Takes the results of handlers that finished since the last call.
    func collectCompletions() {
        let done = completions.update { queue -> [[[UInt8]]] in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        guard !done.isEmpty else { return }
        inFlight -= done.count
        for frames in done {
            switch frames[0][4] {
            case ResultStatus.ok.rawValue: stats.succeeded += 1
            case ResultStatus.rejected.rawValue: stats.rejected += 1
            default: stats.failed += 1
            }
        }
        pendingResults.append(contentsOf: done)
    }

    private func reply(_ status: ResultStatus, attempt: UInt16, clientID: [UInt8], jobID: [UInt8], body: [UInt8]) {
        pendingResults.append(ResultMessage(status: status, attempt: attempt, clientID: clientID, jobID: jobID, body: body).encode())
    }

    /// Sends queued results without blocking; what `socket` cannot take now stays queued.
    func flush(to socket: Socket) {
        var sent = 0
        for frames in pendingResults {
            do {
                guard try socket.trySend(multipart: frames) else { break }
            } catch {
                logger.warning("sending a result failed: \(error)")
            }
            sent += 1
        }
        pendingResults.removeFirst(sent)
    }

    /// Last chance for queued results before the socket closes (LINGER bounds it).
    func flushBeforeClose(to socket: Socket) {
        for frames in pendingResults {
            try? socket.send(multipart: frames, wait: false)
        }
        pendingResults.removeAll()
    }
}

/// An append-only file with one line per handler start, `client-id job-id attempt` in hex and
/// decimal, flushed to disk before the handler runs so it survives SIGKILL. Tests read it to count
/// executions per job; it is off unless a worker is given a path.
final class ExecutionLog: Sendable {
    private let file: FileHandle

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw JobError(.invalidJob, "cannot create the execution log \(path)")
            }
        }
        file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try file.seekToEnd()
    }

    func record(_ job: JobMessage) {
        let line = "\(Self.hex(job.clientID)) \(Self.hex(job.jobID)) \(job.attempt)\n"
        try? file.write(contentsOf: Data(line.utf8))
        try? file.synchronize()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}
