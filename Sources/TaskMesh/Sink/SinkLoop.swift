import Logging
import ZMQ

/// The sink's socket loop, run on its own thread by `Sink`.
///
/// Results are forwarded without copying their payload: the loop reads the header's client id
/// and sends the same message through the ROUTER, prefixed by that id. A result whose client is
/// unknown is dropped and counted; one whose client's queue is full waits in a bounded backlog
/// and is retried every millisecond or so, so a busy client loses nothing and never blocks the
/// loop or other clients (ROUTER_MANDATORY with non-blocking sends).
final class SinkLoop {
    private let topology: Topology
    private let results: Socket
    private let clients: Socket
    private let thread: LoopThread
    private let published: Shared<SinkStats>
    private let logger: Logger

    private var membership = Membership()
    private var backlog = ResultBacklog<Message>()
    private var clientsSeen: [[UInt8]: MemberListener] = [:]
    private var stats = SinkStats()
    private var nextTick: Instant

    init(topology: Topology, hub: Topology.Sink, sockets: SocketFactory, thread: LoopThread, published: Shared<SinkStats>, logger: Logger) throws {
        self.topology = topology
        self.thread = thread
        self.published = published
        self.logger = logger
        secure = sockets.security != nil
        results = try sockets.makeServer(.pull, domain: .workers)
        clients = try sockets.makeServer(.router, domain: .clients)
        nextTick = .current
        boundEndpoints = (try results.bind(hub.resultsBind), try clients.bind(hub.clientsBind))
        try sockets.verifyRejectsStrangers(.pull, boundAt: boundEndpoints.results)
        try sockets.verifyRejectsStrangers(.router, boundAt: boundEndpoints.clients)
    }

    /// CURVE is on: only workers' keys reach `results`, only clients' keys reach `clients`, and a
    /// client receives results only under the id its key proves.
    private let secure: Bool

    /// The endpoints actually bound (a port 0 replaced by the chosen port).
    let boundEndpoints: (results: String, clients: String)

    func run() {
        var poller = Poller()
        let resultsIndex = poller.add(results)
        let clientsIndex = poller.add(clients)
        poller.add(thread.signal)
        while !thread.isStopRequested {
            let wait = backlog.pollTimeout(max(.zero, Instant.current.duration(to: nextTick)))
            guard thread.wait(&poller, upTo: wait, logger: logger) else { break }
            if !backlog.isEmpty { deliverBacklog() }
            if poller.events(at: resultsIndex).contains(.readable) { drainResults() }
            if poller.events(at: clientsIndex).contains(.readable) { drainClients() }
            if Instant.current >= nextTick { tick() }
            published.publish(stats)
        }
        results.close()
        clients.close()
    }


    /// Reads at most a batch per wake-up so client traffic is never starved.
    private func drainResults() {
        // A receive error is a message of more than one frame: no worker sends one.
        SocketDrain.messages(receive: { () throws(ZMQError) in try results.tryReceiveMessages(maxFrames: 1) },
                             malformed: { stats.malformed += 1 }) { frames in
            handleWorkerMessage(frames[0])
        }
    }

    private func handleWorkerMessage(_ frame: Message) {
        // Results are routed from their first bytes: a RESULT's payload is never copied.
        let message: WorkerToSink
        do {
            message = try WorkerToSink.decode(prefix: frame.prefix(WorkerToSink.routingPrefix), count: frame.count, whole: { frame.bytes })
        } catch {
            stats.malformed += 1
            logger.debug("dropped malformed worker message: \(error)")
            return
        }
        switch message {
        case .result(let clientID, let count):
            guard !secure || clientsSeen[clientID] != nil else {
                stats.resultsDroppedNoClient += UInt64(count)  // no client has proven this id
                return
            }
            forward(frame, results: count, to: clientID)
        case .progress(let clientID):
            forwardProgress(frame, to: clientID)
        case .announce(let announce):
            if secure && !RoleSecurity.identity(frame.property(MessageProperty.userID), is: announce.publicKey) {
                stats.malformed += 1  // a worker may only announce its own key
                logger.warning("dropped an ANNOUNCE whose key is not its sender's")
                return
            }
            if membership.announce(announce, at: .current) {
                logger.info("worker joined", metadata: ["worker": "\(JobID(bytes: announce.workerID))", "endpoint": "\(announce.endpoint)"])
                broadcastMembers()
            }
        case .bye(let bye):
            if membership.remove(bye.workerID) {
                logger.info("worker left", metadata: ["worker": "\(JobID(bytes: bye.workerID))"])
                broadcastMembers()
            }
        }
    }

    /// Sends a RESULT or RESULTS (`results` results) on to its client, or holds it.
    private func forward(_ frame: Message, results: Int, to clientID: [UInt8]) {
        switch backlog.offer(frame, size: frame.count, results: results, to: clientID, via: { send($0, to: clientID) }) {
        case .sent: stats.resultsForwarded += UInt64(results)
        case .held: break
        case .gone: stats.resultsDroppedNoClient += UInt64(results)
        case .refused:
            stats.resultsDroppedClientBusy += UInt64(results)
            logger.warning("dropped results: their client has stopped reading", metadata: ["client": "\(JobID(bytes: clientID))", "results": "\(results)"])
        }
    }

    /// Sends a PROGRESS on to its client now, or drops it: it never waits in the backlog, and
    /// never goes ahead of results held there for the same client.
    private func forwardProgress(_ frame: Message, to clientID: [UInt8]) {
        guard clientsSeen[clientID] != nil, !backlog.isHolding(clientID), send(frame, to: clientID) == .sent else {
            stats.progressDropped += 1
            return
        }
        stats.progressForwarded += 1
    }

    private func deliverBacklog() {
        let (sent, dropped) = backlog.deliver { clientID, frame in send(frame, to: clientID) }
        stats.resultsForwarded += UInt64(sent)
        stats.resultsDroppedNoClient += UInt64(dropped)
    }

    private func send(_ frame: Message, to clientID: [UInt8]) -> ResultBacklog<Message>.Delivery {
        do {
            try clients.send(messages: [Message(clientID), frame], wait: false)
            return .sent
        } catch where error.code == .hostUnreachable {
            // A client that said HELLO within the heartbeat expiry is reconnecting or stalled,
            // not gone: keep what waits for it (bounded) until it speaks again or falls silent.
            return clientsSeen[clientID] != nil ? .busy : .gone
        } catch where error.code == .wouldBlock {
            return .busy
        } catch {
            logger.warning("forwarding a result failed: \(error)")
            return .gone
        }
    }

    private func drainClients() {
        SocketDrain.messages(receive: { () throws(ZMQError) in try clients.tryReceive(maxFrames: 2, property: MessageProperty.userID) },
                             malformed: { stats.malformed += 1 }) { (frames, userID) in
            guard frames.count == 2, (try? ByteReader.command(of: frames[1])) == .hello else {
                stats.malformed += 1
                return
            }
            let routingID = frames[0]
            if secure && !RoleSecurity.identity(userID, owns: routingID) {
                stats.malformed += 1  // a client's id is its public key; anything else is an impostor
                return
            }
            if clientsSeen[routingID] == nil {
                clientsSeen[routingID] = MemberListener(lastHeard: .current)
                sendMembers(to: routingID, full: membership.message.encode())
            } else {
                clientsSeen[routingID]?.lastHeard = .current
            }
        }
    }

    private func tick() {
        let now = Instant.current
        nextTick = now + topology.heartbeat.interval
        let expired = membership.expire(olderThan: topology.heartbeat.expiry, at: now)
        if !expired.isEmpty {
            stats.workersExpired += UInt64(expired.count)
            for id in expired {
                logger.warning("worker expired after silence", metadata: ["worker": "\(JobID(bytes: id))"])
            }
        }
        clientsSeen = clientsSeen.filter { now - $0.value.lastHeard <= topology.heartbeat.expiry }
        broadcastMembers()  // also the sink's heartbeat to clients
        stats.liveWorkers = membership.workers.count
        stats.liveClients = clientsSeen.count
    }

    /// Sends every live client the member list: the full list to those that do not hold the
    /// current epoch or are due a refresh, a short "unchanged" MEMBERS to the others, so a
    /// large, steady mesh costs a few bytes per client per interval.
    private func broadcastMembers() {
        let list = membership.message
        let epoch = list.epoch
        var full: [UInt8]?
        var unchanged: [UInt8]?
        for routingID in Array(clientsSeen.keys) {
            guard let listener = clientsSeen[routingID] else { continue }
            if listener.needsFullList(epoch: epoch) {
                if full == nil { full = list.encode() }
                sendMembers(to: routingID, full: full!)
            } else {
                if unchanged == nil { unchanged = MembersMessage(epoch: epoch, members: [], unchanged: true).encode() }
                if send(unchanged!, to: routingID) { clientsSeen[routingID]?.sentUnchanged() }
            }
        }
    }

    /// Sends the full list `message` of the current epoch and records it when it left.
    private func sendMembers(to routingID: [UInt8], full message: [UInt8]) {
        if send(message, to: routingID) { clientsSeen[routingID]?.sentFull(epoch: membership.epoch) }
    }

    /// Whether the message left; a client that is gone is forgotten.
    @discardableResult
    private func send(_ message: [UInt8], to routingID: [UInt8]) -> Bool {
        do {
            try clients.send(multipart: [routingID, message], wait: false)
            return true
        } catch where error.code == .hostUnreachable {
            clientsSeen.removeValue(forKey: routingID)
        } catch {
            // A client too busy to take a membership update gets the next one.
        }
        return false
    }
}
