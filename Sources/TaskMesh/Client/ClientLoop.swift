import Logging
import ZMQ

/// A client's socket loop, run on its own thread by `Client`.
///
/// It owns the PUSH socket connected to every live worker (jobs, round robin) and the DEALER
/// connected to the sink (results and membership in, HELLO heartbeats out). Jobs wait in the
/// outbox while no worker can take them; every job ends exactly once here, by result, deadline,
/// cancellation or close.
final class ClientLoop {
    private let core: ClientCore
    private let topology: Topology
    private let jobs: Socket
    private let sink: Socket
    private let logger: Logger

    private var pending = PendingJobs()
    private var stats = ClientStats()
    private var workers: [String: [UInt8]] = [:]  // endpoint -> worker id
    private var membersEpoch: UInt64?
    private var nextHello: Instant = .current

    init(core: ClientCore, topology: Topology, sockets: SocketFactory, logger: Logger) throws {
        self.core = core
        self.topology = topology
        self.logger = logger
        jobs = try sockets.make(.push)
        sink = try sockets.make(.dealer)
        try sink.set(.routingID, core.clientID)
        try sink.connect(topology.sink.clientsEndpoint)
    }

    func run() {
        var poller = Poller()
        let jobsIndex = poller.add(jobs, [])
        let sinkIndex = poller.add(sink)
        poller.add(core.thread.signal)
        while !core.thread.isStopRequested {
            takeInbox()
            sendJobs()
            let now = Instant.current
            var wake = nextHello
            if let deadline = pending.nextDeadline { wake = min(wake, deadline) }
            let hasOutbox = pending.nextToSend() != nil && !workers.isEmpty
            poller.setInterest(hasOutbox ? .writable : [], at: jobsIndex)
            do {
                try poller.poll(timeout: max(.zero, now.duration(to: wake)))
            } catch {
                logger.error("poll failed: \(error)")
                break
            }
            core.thread.signal.drain()
            if poller.events(at: sinkIndex).contains(.readable) { readSink() }
            expireJobs()
            if Instant.current >= nextHello { hello() }
            stats.pending = pending.count
            stats.workers = workers.count
            core.stats.publish(stats)
        }
        finish()
    }

    private func takeInbox() {
        let inbox = core.inbox.update { inbox -> ClientInbox in
            defer { inbox = ClientInbox() }
            return inbox
        }
        for submission in inbox.submissions {
            stats.submitted += 1
            if submission.promise.isComplete {  // cancelled before the loop saw it
                end(submission.promise, .failure(JobError(.cancelled)))
            } else if !pending.add(submission) {
                end(submission.promise, .failure(JobError(.duplicateJobID, "job \(JobID(bytes: submission.jobID)) is already pending")))
            }
        }
        for id in inbox.cancellations {
            if let entry = pending.finish(id) {
                end(entry.submission.promise, .failure(JobError(.cancelled)))
            }
        }
    }

    private func sendJobs() {
        guard !workers.isEmpty else { return }
        while let job = pending.nextToSend() {
            let message = JobMessage(clientID: core.clientID, jobID: job.jobID, handler: job.handler,
                                     deadline: job.wallDeadline, attempt: 1, payload: job.payload)
            do {
                guard try jobs.trySend(multipart: message.encode()) else { return }
            } catch {
                logger.error("sending a job failed: \(error)")
                return
            }
            pending.markSent()
        }
    }

    private func readSink() {
        for _ in 0..<4096 {
            let frames: [[UInt8]]
            do {
                guard let received = try sink.tryReceive(maxFrames: 2) else { return }
                frames = received
            } catch {
                stats.malformed += 1
                continue
            }
            switch Result(catching: { () throws(ProtocolViolation) in try SinkToClient.decode(frames) }) {
            case .success(.result(let result)): handle(result)
            case .success(.members(let members)): apply(members)
            case .failure(let violation):
                stats.malformed += 1
                logger.debug("dropped malformed message from sink: \(violation)")
            }
        }
    }

    private func handle(_ result: ResultMessage) {
        guard result.clientID == core.clientID else {
            stats.malformed += 1
            return
        }
        if result.status == .declined {
            if pending.requeue(result.jobID) { stats.resent += 1 }
            return
        }
        guard let entry = pending.finish(result.jobID) else {
            stats.droppedLateOrDuplicate += 1
            return
        }
        let text = String(decoding: result.body, as: UTF8.self)
        let outcome: Result<[UInt8], JobError> = switch result.status {
        case .ok: .success(result.body)
        case .unknownHandler: .failure(JobError(.unknownHandler, "no worker has a handler named \"\(text)\""))
        case .rejected: .failure(JobError(.rejected, text))
        case .failed: .failure(JobError(.handlerFailed, text))
        case .badRequest, .declined: .failure(JobError(.badRequest, text))
        }
        end(entry.submission.promise, outcome)
    }

    private func apply(_ members: MembersMessage) {
        guard members.epoch != membersEpoch else { return }
        membersEpoch = members.epoch
        let wanted = Dictionary(members.members.map { ($0.endpoint, $0.workerID) }, uniquingKeysWith: { a, _ in a })
        for endpoint in workers.keys where wanted[endpoint] == nil {
            try? jobs.disconnect(endpoint)
            workers.removeValue(forKey: endpoint)
            logger.debug("stopped sending to worker", metadata: ["endpoint": "\(endpoint)"])
        }
        for (endpoint, id) in wanted where workers[endpoint] == nil {
            do {
                try jobs.connect(endpoint)
                workers[endpoint] = id
                logger.debug("sending to worker", metadata: ["endpoint": "\(endpoint)"])
            } catch {
                logger.warning("cannot connect to advertised worker endpoint", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
            }
        }
    }

    private func expireJobs() {
        for entry in pending.expire(at: .current) {
            if !entry.sent && workers.isEmpty {
                end(entry.submission.promise, .failure(JobError(.noWorkers, "no worker was available before the deadline")))
            } else {
                end(entry.submission.promise, .failure(JobError(.timedOut, "no outcome before the deadline")))
            }
        }
    }

    private func hello() {
        nextHello = Instant.current + topology.heartbeat.interval
        _ = try? sink.trySend(multipart: HelloMessage().encode())
    }

    /// Every job that reached the loop ends here, exactly once. Its promise may already hold
    /// `cancelled` (set by its submitter); then this outcome is dropped.
    private func end(_ promise: Promise<[UInt8]>, _ outcome: Result<[UInt8], JobError>) {
        core.pendingCount.subtract(1, ordering: .relaxed)
        let final = promise.complete(outcome) ? outcome : .failure(JobError(.cancelled))
        switch final {
        case .success: stats.succeeded += 1
        case .failure(let error) where error.code == .timedOut || error.code == .noWorkers: stats.timedOut += 1
        case .failure: stats.failed += 1
        }
    }

    private func finish() {
        takeInbox()
        for entry in pending.removeAll() {
            end(entry.submission.promise, .failure(JobError(.meshClosed, "the client was closed")))
        }
        stats.pending = 0
        core.stats.publish(stats)
        try? jobs.set(.linger, .zero)
        try? sink.set(.linger, .zero)
        jobs.close()
        sink.close()
    }
}
