import Foundation
import Logging
import ZMQ

/// A worker's socket loop, run on its own thread by `Worker`.
///
/// It reads jobs only while fewer than `concurrency` run, so a busy worker leaves the rest in
/// its socket queue; handlers run as tasks and hand their results back through a locked queue
/// and a signal. Heartbeats (ANNOUNCE) come from this loop, independent of the handlers.
final class WorkerLoop {
    struct Identity: Sendable {
        let workerID: [UInt8]
        let endpoint: String
    }

    /// Jobs whose deadline passed longer ago than this are skipped unread: the tolerance covers
    /// clock differences between client and worker hosts.
    static let clockSkewTolerance: UInt64 = 1000

    private let topology: Topology
    private let handlers: Handlers
    private let concurrency: Int
    private let jobs: Socket
    private let connections: SocketMonitor
    private let results: Socket
    private let thread: LoopThread
    private let completions: Shared<[[[UInt8]]]>
    private let published: Shared<WorkerStats>
    private let logger: Logger
    let identity: Identity

    private var stats = WorkerStats()
    private var inFlight = 0
    private var pendingResults: [[[UInt8]]] = []
    private var nextAnnounce: Instant = .current
    private var draining: (declineUntil: Instant, giveUpAt: Instant)?
    /// Open client connections to the job socket (tcp and ipc; inproc reports none).
    private var connectedPeers = Set<UInt32>()
    private let isInproc: Bool

    init(topology: Topology, handlers: Handlers, concurrency: Int, workerID: [UInt8], sockets: SocketFactory,
         thread: LoopThread, completions: Shared<[[[UInt8]]]>, published: Shared<WorkerStats>, logger: Logger) throws {
        self.topology = topology
        self.handlers = handlers
        self.concurrency = concurrency
        self.thread = thread
        self.completions = completions
        self.published = published
        self.logger = logger
        jobs = try sockets.make(.pull)
        // Results queue while the sink restarts (no IMMEDIATE): there is only one place to go.
        results = try sockets.make(.push, immediate: false)
        connections = try jobs.monitor()
        isInproc = topology.worker.bind.hasPrefix("inproc://")
        let bound = try jobs.bind(Self.uniqueBind(topology.worker.bind, workerID: workerID))
        identity = Identity(workerID: workerID, endpoint: Self.advertised(bound, host: topology.worker.advertiseHost))
        guard identity.endpoint.utf8.count <= Wire.maxEndpointLength else {
            throw ZMQError(.invalidArgument, message: "the advertised endpoint \"\(identity.endpoint)\" is longer than \(Wire.maxEndpointLength) bytes")
        }
        try results.connect(topology.sink.resultsEndpoint)
    }

    /// inproc and ipc names must differ per worker; tcp binds differ by port.
    static func uniqueBind(_ bind: String, workerID: [UInt8]) -> String {
        guard bind.hasPrefix("inproc://") || bind.hasPrefix("ipc://") else { return bind }
        return "\(bind)-\(JobID(bytes: workerID))"
    }

    /// The endpoint clients use: the bound endpoint with its host replaced by `host`, or by this
    /// machine's name for a wildcard bind.
    static func advertised(_ bound: String, host: String?) -> String {
        guard bound.hasPrefix("tcp://"), let colon = bound.lastIndex(of: ":") else { return bound }
        let boundHost = String(bound[bound.index(bound.startIndex, offsetBy: 6)..<colon])
        let port = bound[bound.index(after: colon)...]
        let wildcard = boundHost == "0.0.0.0" || boundHost == "*" || boundHost == "[::]"
        guard let replacement = host ?? (wildcard ? ProcessInfo.processInfo.hostName : nil) else { return bound }
        return "tcp://\(replacement):\(port)"
    }

    func run() {
        var poller = Poller()
        let jobsIndex = poller.add(jobs)
        let resultsIndex = poller.add(results, [])
        let monitorIndex = poller.add(connections.socket)
        poller.add(thread.signal)
        while true {
            let now = Instant.current
            if thread.isStopRequested && draining == nil { beginDraining(at: now) }
            if let draining, now >= draining.giveUpAt || (inFlight == 0 && (now >= draining.declineUntil || noClientsLeft)) { break }

            let accepting = draining != nil || inFlight < concurrency
            poller.setInterest(accepting ? .readable : [], at: jobsIndex)
            poller.setInterest(pendingResults.isEmpty ? [] : .writable, at: resultsIndex)
            var wait = max(.zero, now.duration(to: nextAnnounce))
            if let draining { wait = min(wait, max(.zero, now.duration(to: draining.declineUntil))) }
            do {
                try poller.poll(timeout: wait)
            } catch {
                logger.error("poll failed: \(error)")
                break
            }
            thread.signal.drain()
            collectCompletions()
            flushResults()
            if poller.events(at: jobsIndex).contains(.readable) { readJobs() }
            if poller.events(at: monitorIndex).contains(.readable) { trackConnections() }
            if draining == nil && Instant.current >= nextAnnounce { announce() }
            stats.inFlight = inFlight
            published.publish(stats)
        }
        finish()
    }

    /// Whether a draining worker can stop declining: every client has disconnected. inproc
    /// connections report no events, so there the decline window always runs its course.
    private var noClientsLeft: Bool { !isInproc && connectedPeers.isEmpty }

    private func trackConnections() {
        while let event = try? connections.tryReceiveEvent() {
            switch event.kind {
            case .accepted: connectedPeers.insert(event.value)
            case .disconnected: connectedPeers.remove(event.value)
            default: break
            }
        }
    }

    private func readJobs() {
        while draining != nil || inFlight < concurrency {
            let frames: [[UInt8]]
            do {
                guard let received = try jobs.tryReceive(maxFrames: 2) else { return }
                frames = received
            } catch {
                stats.malformed += 1
                continue
            }
            stats.received += 1
            handle(frames)
        }
    }

    private func handle(_ frames: [[UInt8]]) {
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
        if draining != nil {
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
        let input = Job(
            id: JobID(bytes: job.jobID), handler: job.handler, payload: job.payload, attempt: Int(job.attempt),
            deadline: job.deadline == 0 ? nil : Date(timeIntervalSince1970: Double(job.deadline) / 1000)
        )
        let completions = self.completions, signal = thread.signal, limit = topology.limits.maxPayload
        Task {
            var outcome = await run(input)
            if outcome.body.count > limit {
                outcome = HandlerOutcome(.failed, Array("the result of \(outcome.body.count) bytes exceeds limits.max_payload (\(limit) bytes)".utf8))
            }
            let frames = ResultMessage(status: outcome.status, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: outcome.body).encode()
            completions.update { $0.append(frames) }
            signal.notify()
        }
    }

    private func collectCompletions() {
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
        flushResults()
    }

    /// Sends queued results without blocking; what the socket cannot take now waits for the
    /// next writable wake-up.
    private func flushResults() {
        var sent = 0
        for frames in pendingResults {
            do {
                guard try results.trySend(multipart: frames) else { break }
            } catch {
                logger.warning("sending a result failed: \(error)")
            }
            sent += 1
        }
        pendingResults.removeFirst(sent)
    }

    private func announce() {
        nextAnnounce = Instant.current + topology.heartbeat.interval
        let message = AnnounceMessage(workerID: identity.workerID, endpoint: identity.endpoint, concurrency: UInt16(clamping: concurrency))
        _ = try? results.trySend(multipart: message.encode())
    }

    /// Leaves the membership at once, then declines jobs still arriving while clients learn that
    /// this worker is gone, and lets running jobs finish within the drain timeout.
    private func beginDraining(at now: Instant) {
        _ = try? results.trySend(multipart: ByeMessage(workerID: identity.workerID).encode())
        let giveUpAt = now + topology.worker.drainTimeout
        // In-process clients hear of the BYE within microseconds; remote ones within a heartbeat.
        let window = isInproc ? Duration.milliseconds(50) : topology.heartbeat.interval * 2
        let declineUntil = min(giveUpAt, now + window)
        draining = (declineUntil, giveUpAt)
        logger.info("worker stopping", metadata: ["inFlight": "\(inFlight)"])
    }

    private func finish() {
        connections.socket.close()
        if inFlight > 0 {
            logger.warning("worker stopped with jobs still running", metadata: ["inFlight": "\(inFlight)"])
        }
        jobs.close()
        // Give the last results a moment to leave; LINGER bounds it.
        try? results.set(.linger, .seconds(2))
        for frames in pendingResults {
            try? results.send(multipart: frames, wait: false)
        }
        results.close()
        published.publish(stats)
    }
}
