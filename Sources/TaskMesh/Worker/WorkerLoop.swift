import Foundation
import Logging
import ZMQ

/// A direct-mode worker's socket loop, run on its own thread by `Worker`.
///
/// It binds a PULL for jobs and pushes results, ANNOUNCEs and BYE to the sink. It reads up to
/// `worker.prefetch` jobs ahead of the runners, so one wake-up takes many jobs and runners never
/// wait for the socket; past that a busy worker leaves the rest in its socket queue.
/// Heartbeats (ANNOUNCE) come from this loop, independent of the handlers.
final class WorkerLoop {
    struct Identity: Sendable {
        let workerID: [UInt8]
        let endpoint: String
    }

    private let topology: Topology
    private let concurrency: Int
    private let readLimit: Int
    private let jobs: Socket
    private let connections: SocketMonitor
    private let results: Socket
    private let thread: LoopThread
    private let runner: JobRunner
    private let logger: Logger
    let identity: Identity

    private var nextAnnounce: Instant = .current
    /// An ANNOUNCE the results socket had no room for: it leaves, ahead of any result, as soon
    /// as there is room (the sink takes a worker it has not heard from for gone, whatever
    /// results it sent).
    private var announcePending = false
    private var draining: (declineUntil: Instant, giveUpAt: Instant)?
    /// Open client connections to the job socket (tcp and ipc; inproc reports none).
    private var connectedPeers = Set<UInt32>()
    private let isInproc: Bool
    /// This worker's CURVE public key, announced so clients can connect; empty without security.
    private let publicKey: [UInt8]

    init(topology: Topology, sink: Topology.Sink, runner: JobRunner, concurrency: Int, workerID: [UInt8], sockets: SocketFactory,
         thread: LoopThread, logger: Logger) throws {
        self.topology = topology
        self.runner = runner
        self.concurrency = concurrency
        self.readLimit = concurrency + topology.worker.prefetch(concurrency: concurrency, mode: topology.mode)
        self.thread = thread
        self.logger = logger
        jobs = try sockets.makeServer(.pull, domain: .clients)
        // Results queue while the sink restarts (no IMMEDIATE): there is only one place to go.
        let sinkKey = try sockets.security.map { (security) throws(SecurityError) in try security.require(security.sinkKey, "security.servers.sink") }
        results = try sockets.makeClient(.push, serverKey: sinkKey, immediate: false)
        publicKey = sockets.security?.publicKey ?? []
        connections = try jobs.monitor()
        isInproc = topology.worker.bind.hasPrefix("inproc://")
        let bound = try jobs.bind(Self.uniqueBind(topology.worker.bind, workerID: workerID))
        try sockets.verifyRejectsStrangers(.pull, boundAt: bound)
        identity = Identity(workerID: workerID, endpoint: Self.advertised(bound, host: topology.worker.advertiseHost))
        guard identity.endpoint.utf8.count <= Wire.maxEndpointLength else {
            throw ZMQError(.invalidArgument, message: "the advertised endpoint \"\(identity.endpoint)\" is longer than \(Wire.maxEndpointLength) bytes")
        }
        try results.connect(sink.resultsEndpoint)
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
            if let draining, now >= draining.giveUpAt || (runner.inFlight == 0 && canLeave(draining, now: now)) { break }

            let accepting = draining != nil || runner.unanswered < readLimit
            poller.setInterest(accepting ? .readable : [], at: jobsIndex)
            poller.setInterest(runner.hasResultsToSend || announcePending ? .writable : [], at: resultsIndex)
            var wait = max(.zero, now.duration(to: nextAnnounce))
            if let draining { wait = min(wait, max(.zero, now.duration(to: draining.declineUntil))) }
            if let next = runner.nextHousekeeping { wait = min(wait, max(.zero, now.duration(to: next))) }
            guard thread.wait(&poller, upTo: wait, logger: logger) else { break }
            if runner.applyHandlerUpdate() && draining == nil { announce() }
            runner.collectCompletions()
            if poller.events(at: jobsIndex).contains(.readable) { readJobs() }
            runner.startAccepted()
            runner.housekeeping(at: .current)
            // The heartbeat first: under back-pressure results fill every slot the sink frees.
            if draining == nil && (announcePending || Instant.current >= nextAnnounce) { announce() }
            runner.flush(to: results)
            if poller.events(at: monitorIndex).contains(.readable) { trackConnections() }
            runner.publishStats()
        }
        finish()
    }

    /// Whether a draining worker with nothing running may close: over tcp and ipc once every
    /// client has disconnected (a client still connected may still be sending; closing then
    /// would lose what is on the way), over inproc (which reports no connection events) after
    /// the short decline window. `drain_timeout` bounds both.
    private func canLeave(_ draining: (declineUntil: Instant, giveUpAt: Instant), now: Instant) -> Bool {
        isInproc ? now >= draining.declineUntil : connectedPeers.isEmpty
    }

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
        // A receive error is a message of more than one frame: no client sends one.
        SocketDrain.messages(upTo: .max, receive: { () throws(ZMQError) in try jobs.tryReceive(maxFrames: 1, property: MessageProperty.userID) },
                             malformed: { runner.stats.malformed += 1 },
                             while: { _ in draining != nil || runner.unanswered < readLimit }) { (frames, sender) in
            runner.accept(frames[0], declining: draining != nil, sender: sender)
        }
    }

    private func announce() {
        nextAnnounce = Instant.current + topology.heartbeat.interval
        let message = AnnounceMessage(workerID: identity.workerID, endpoint: identity.endpoint,
                                      concurrency: UInt16(clamping: concurrency), publicKey: publicKey,
                                      capabilities: runner.capabilities)
        announcePending = (try? results.trySend(message.encode())) == false  // full now; an error is not retried
    }

    /// Leaves the membership at once, then declines jobs still arriving while clients learn that
    /// this worker is gone, and lets running jobs finish within the drain timeout.
    private func beginDraining(at now: Instant) {
        _ = try? results.trySend(ByeMessage(workerID: identity.workerID).encode())
        let giveUpAt = now + topology.worker.drainTimeout
        // In-process clients hear of the BYE within microseconds; remote ones within a heartbeat.
        let window = isInproc ? Duration.milliseconds(50) : topology.heartbeat.interval * 2
        let declineUntil = min(giveUpAt, now + window)
        draining = (declineUntil, giveUpAt)
        runner.declineQueued()
        logger.info("worker stopping", metadata: ["inFlight": "\(runner.inFlight)"])
    }

    private func finish() {
        runner.close()
        connections.socket.close()
        if runner.inFlight > 0 {
            logger.warning("worker stopped with jobs still running", metadata: ["inFlight": "\(runner.inFlight)"])
        }
        // Jobs that reached this worker after its last read are handed back, not dropped.
        while let (frames, sender) = (try? jobs.tryReceive(maxFrames: 1, property: MessageProperty.userID)) ?? nil {
            runner.accept(frames[0], declining: true, sender: sender)
        }
        jobs.close()
        // Give the last results a moment to leave; LINGER bounds it.
        try? results.set(.linger, .seconds(2))
        runner.flushBeforeClose(to: results)
        results.close()
        runner.publishStats()
    }
}
