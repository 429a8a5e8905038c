import Logging
import ZMQ

/// The broker's socket loop, run on its own thread by `Broker`: a ROUTER for clients and a ROUTER
/// for workers, feeding `BrokerState` and sending what it returns.
final class BrokerLoop {
    private let topology: Topology
    private let clients: Socket
    private let workers: Socket
    private let thread: LoopThread
    private let published: Shared<BrokerStats>
    private let logger: Logger
    /// New on every start, carried in heartbeats so peers notice a restart.
    private let instance = UInt64.random(in: 1...UInt64.max)

    private var state: BrokerState
    private var clientsSeen: [[UInt8]: Instant] = [:]
    /// Results for clients whose queue was full, sent as they catch up.
    private var backlog = ResultBacklog<[UInt8]>()
    /// The state's outbox as taken by the last `flushOutputs()`, kept for its capacity. The
    /// outbox is sent once per wake-up, so jobs for one worker and results for one client leave
    /// together as JOBS and RESULTS.
    private var taken: [BrokerOutput] = []
    /// Past this many waiting outputs the loop sends them before reading on, so one wake-up's
    /// worth of big batches cannot pile up without bound.
    static let outputsPerFlush = 8192
    private var nextTick: Instant = .current
    let boundEndpoints: (clients: String, workers: String)

    init(topology: Topology, hub: Topology.Broker, sockets: SocketFactory, thread: LoopThread, published: Shared<BrokerStats>, logger: Logger) throws {
        self.topology = topology
        self.thread = thread
        self.published = published
        self.logger = logger
        state = BrokerState(config: hub, expiry: topology.heartbeat.expiry)
        secure = sockets.security != nil
        clients = try sockets.makeServer(.router, domain: .clients)
        workers = try sockets.makeServer(.router, domain: .workers)
        boundEndpoints = (try clients.bind(hub.clientsBind), try workers.bind(hub.workersBind))
        try sockets.verifyRejectsStrangers(.router, boundAt: boundEndpoints.clients)
        try sockets.verifyRejectsStrangers(.router, boundAt: boundEndpoints.workers)
    }

    /// CURVE is on: a client's routing id (its client id) must be the key it proved.
    private let secure: Bool

    func run() {
        var poller = Poller()
        let clientsIndex = poller.add(clients)
        let workersIndex = poller.add(workers)
        poller.add(thread.signal)
        while !thread.isStopRequested {
            let wake = state.nextRetry.map { min($0, nextTick) } ?? nextTick
            guard thread.wait(&poller, upTo: backlog.pollTimeout(max(.zero, Instant.current.duration(to: wake))), logger: logger) else { break }
            if !backlog.isEmpty { deliverBacklog() }
            // Everything read in one wake-up is one batch: jobs are handed out once, at its end,
            // in runs per worker, instead of one dispatch per result and per submission.
            state.beginBatch()
            if poller.events(at: workersIndex).contains(.readable) { readWorkers() }
            if poller.events(at: clientsIndex).contains(.readable) { readClients() }
            if let retry = state.nextRetry, retry <= .current { state.releaseRetries(now: .current) }
            state.endBatch(now: .current)
            if Instant.current >= nextTick { tick() }
            flushOutputs()
            published.publish(state.stats)
        }
        clients.close()
        workers.close()
    }


    private func readWorkers() {
        SocketDrain.messages(receive: { () throws(ZMQError) in try workers.tryReceive(maxFrames: 2) },
                             malformed: { state.stats.malformed += 1 }) { frames in
            // A ROUTER hands over the sender's routing id, then its message: one frame.
            guard frames.count == 2 else { state.stats.malformed += 1; return }
            let routingID = frames[0]
            let message: WorkerToBroker
            do {
                message = try WorkerToBroker.decode(frames[1])
            } catch {
                state.stats.malformed += 1
                logger.debug("dropped malformed worker message: \(error)")
                return
            }
            let now = Instant.current
            if state.outbox.count >= Self.outputsPerFlush { flushOutputs() }
            if case .ready(let ready) = message {
                // What was decided for this worker's old connection leaves first: READY moves its
                // running jobs to the new one, and a send that fails then must still find them.
                flushOutputs()
                // A known connection says READY again when its credit changes: not news.
                let level: Logger.Level = state.workers[routingID] == nil ? .info : .debug
                logger.log(level: level, "worker ready", metadata: [
                    "worker": "\(JobID(bytes: ready.workerID))", "concurrency": "\(ready.concurrency)",
                    "handlers": "\(ready.capabilities.handlers?.joined(separator: ",") ?? "any")",
                    "labels": "\(ready.capabilities.labels.joined(separator: ","))",
                ])
                state.ready(ready, from: routingID, now: now)
                sendHeartbeat(toWorker: routingID)
                return
            }
            guard state.heard(from: routingID, now: now) else {
                // A worker this broker does not know (it restarted, or forgot a worker it took for
                // silent): ask it to say READY again. Its results are for attempts the broker
                // has since given to others or ended: stale, counted as such.
                switch message {
                case .result: state.stats.staleResults += 1
                case .results(let batch): state.stats.staleResults += UInt64(batch.count)
                default: break
                }
                try? workers.send(multipart: [routingID, bareCommand(.disconnect)], wait: false)
                return
            }
            switch message {
            case .result(let result): state.result(result, from: routingID, now: now)
            case .results(let batch):
                do throws(DamagedEntry) {
                    try batch.forEach { state.result($0, from: routingID, now: now) }
                } catch {
                    // The lost entries' attempts are requeued when their lease runs out.
                    state.stats.malformed += 1
                    logger.debug("dropped the rest of a damaged RESULTS: \(error.violation)")
                }
            case .progress(let progress):
                // Ahead of the job's result, which a worker sends after it.
                if state.progressIsCurrent(progress, from: routingID) { forwardProgress(progress) }
            case .bye: state.bye(from: routingID, now: now)
            case .disconnect: state.disconnect(from: routingID, now: now)
            case .heartbeat(let held, let probe):
                if let probe { sendHeartbeat(toWorker: routingID, echo: probe) }  // at once: the worker times the round trip
                guard let held else { break }
                let freed = state.workerHolds(Int(held), from: routingID, now: now)
                if freed > 0 {
                    logger.info("freed the slots of attempts past their lease that the worker no longer holds",
                                metadata: ["freed": "\(freed)", "held": "\(held)"])
                }
            case .ready: break
            }
        }
    }

    /// How long one pass may spend reading clients before the workers are served again: a
    /// flood of submissions must not keep the broker from reading its workers' heartbeats and
    /// results (and then take them for silent).
    static let clientReadBudget: Duration = .milliseconds(20)

    private func readClients() {
        let began = Instant.current
        SocketDrain.messages(receive: { () throws(ZMQError) in try clients.tryReceive(maxFrames: 2, property: MessageProperty.userID) },
                             malformed: { state.stats.malformed += 1 },
                             while: { n in n & 63 != 63 || Instant.current - began <= Self.clientReadBudget }) { (frames, userID) in
            guard frames.count == 2, let command = try? ByteReader.command(of: frames[1]) else {
                state.stats.malformed += 1
                return
            }
            let routingID = frames[0]
            if secure && !RoleSecurity.identity(userID, owns: routingID) {
                state.stats.malformed += 1  // an impostor's routing id: ignore everything it sends
                return
            }
            let now = Instant.current
            if state.outbox.count >= Self.outputsPerFlush { flushOutputs() }
            if clientsSeen.updateValue(now, forKey: routingID) == nil { sendHeartbeat(toClient: routingID) }
            switch command {
            case .job:
                do {
                    state.submit(try JobMessage.decode(frames[1]), from: routingID, now: now)
                } catch {
                    state.stats.malformed += 1
                }
            case .jobs:
                submitBatch(frames[1], from: routingID, now: now)
            case .cancel:
                do {
                    let cancel = try CancelMessage.decode(frames[1])
                    if let worker = state.cancel(cancel, from: routingID, now: now) {
                        flushOutputs()  // the job's JOB, if still in the outbox, leaves first
                        try? workers.send(multipart: [worker, cancel.encode()], wait: false)
                    }
                } catch {
                    state.stats.malformed += 1
                }
            case .heartbeat:
                break
            default:
                state.stats.malformed += 1
            }
        }
    }

    /// A JOBS: each intact entry is submitted as if it came alone; a damaged entry whose id can
    /// be read is answered `badRequest` unless the broker already holds or finished a job of that
    /// id (a resend: its real outcome is on the way), and the entries after it are lost (counted
    /// malformed).
    private func submitBatch(_ frame: [UInt8], from client: [UInt8], now: Instant) {
        let batch: JobBatch
        do {
            batch = try JobBatch.decode(frame)
        } catch {
            state.stats.malformed += 1
            return
        }
        do throws(DamagedEntry) {
            try batch.forEach { state.submit($0, from: client, now: now) }
        } catch {
            state.stats.malformed += 1
            if let jobID = error.jobID, batch.clientID == client, !state.knows(clientID: client, jobID: jobID) {
                state.post(.toClient(client, ResultMessage(status: .badRequest, attempt: error.attempt, clientID: client, jobID: jobID,
                                                           body: Array("\(error.violation)".utf8))))
            }
        }
    }

    private func tick() {
        // What the workers sent while this pass was busy proves them alive: read it before
        // looking for silent ones.
        readWorkers()
        let now = Instant.current
        nextTick = now + topology.heartbeat.interval / 2
        let (lost, overran) = (state.stats.workersLost, state.stats.leasesExpired)
        state.tick(now: now)
        if state.stats.workersLost > lost {
            logger.warning("workers went silent (crashed, frozen or cut off); what they ran goes to others",
                           metadata: ["workers": "\(state.stats.workersLost - lost)", "silentFor": "\(topology.heartbeat.expiry)"])
        }
        if state.stats.leasesExpired > overran {
            logger.warning("attempts overran their lease; their jobs go to others",
                           metadata: ["attempts": "\(state.stats.leasesExpired - overran)", "lease": "\(state.config.lease)"])
        }
        clientsSeen = clientsSeen.filter { now - $0.value <= topology.heartbeat.expiry }
        for id in state.workers.keys { sendHeartbeat(toWorker: id) }
        for id in Array(clientsSeen.keys) { sendHeartbeat(toClient: id) }
    }

    private func heartbeat(echo: UInt32? = nil) -> [UInt8] {
        HeartbeatMessage(instance: instance, workers: UInt16(clamping: state.readyWorkers), echo: echo).encode()
    }

    private func sendHeartbeat(toWorker id: [UInt8], echo: UInt32? = nil) {
        try? workers.send(multipart: [id, heartbeat(echo: echo)], wait: false)
    }

    private func sendHeartbeat(toClient id: [UInt8]) {
        do {
            try clients.send(multipart: [id, heartbeat()], wait: false)
        } catch where error.code == .hostUnreachable {
            clientsSeen.removeValue(forKey: id)
        } catch {}
    }

    /// Sends what the state asked for, grouped per peer in order: jobs for one worker as JOBS,
    /// results for one client as RESULTS, within the batch limits. Peers are few per wake-up and
    /// their outputs mostly consecutive, so groups are found by comparing ids, not hashing them.
    private func flushOutputs() {
        while !state.outbox.isEmpty {
            state.takeOutbox(into: &taken)
            var groups: [(toWorker: Bool, id: [UInt8], jobs: [JobMessage], results: [ResultMessage])] = []
            var last = -1
            func group(toWorker: Bool, id: [UInt8]) -> Int {
                if last >= 0 && groups[last].toWorker == toWorker && groups[last].id == id { return last }
                last = groups.firstIndex { $0.toWorker == toWorker && $0.id == id } ?? -1
                if last < 0 {
                    groups.append((toWorker, id, [], []))
                    last = groups.count - 1
                }
                return last
            }
            // Each message is swapped out of the outbox (a placeholder left behind), so it moves
            // into its group without a copy of its ids and payload.
            for index in taken.indices {
                var output = BrokerOutput.placeholder
                swap(&output, &taken[index])
                switch consume output {
                case .toWorker(let worker, let job): groups[group(toWorker: true, id: worker)].jobs.append(job)
                case .toClient(let client, let result): groups[group(toWorker: false, id: client)].results.append(result)
                }
            }
            for group in groups {
                if group.toWorker {
                    send(group.jobs, toWorker: group.id)
                } else {
                    send(group.results, toClient: group.id)
                }
            }
        }
    }

    private func send(_ jobs: [JobMessage], toWorker id: [UInt8]) {
        var start = 0
        while let (frame, count) = JobBatchWriter.firstMessage(of: jobs[start...]) {
            do {
                try workers.send(multipart: [id, frame], wait: false)
            } catch {
                // Gone or not reading: treat it as lost; its jobs go elsewhere.
                logger.warning("cannot reach worker: \(error)")
                state.disconnect(from: id, now: .current)
                return
            }
            start += count
        }
    }

    private func send(_ results: [ResultMessage], toClient id: [UInt8]) {
        var start = 0
        while let (frame, count) = ResultBatchWriter.firstMessage(of: results[start...]) {
            switch backlog.offer(frame, size: frame.count, results: count, to: id, via: { deliver($0, to: id) }) {
            case .sent, .held: break
            case .gone, .refused: state.stats.undeliverable += UInt64(count)  // the outcomes stay cached for a resubmission
            }
            start += count
        }
    }

    private func deliver(_ frame: [UInt8], to client: [UInt8]) -> ResultBacklog<[UInt8]>.Delivery {
        do {
            try clients.send(multipart: [client, frame], wait: false)
            return .sent
        } catch where error.code == .wouldBlock {
            return .busy
        } catch {
            return .gone
        }
    }

    /// Sends a PROGRESS to its client now, or drops it: it never waits, and never overtakes
    /// results held for that client.
    private func forwardProgress(_ progress: ProgressMessage) {
        guard !backlog.isHolding(progress.clientID) else { return }
        _ = deliver(progress.encode(), to: progress.clientID)
    }

    private func deliverBacklog() {
        let (_, dropped) = backlog.deliver { client, frame in deliver(frame, to: client) }
        state.stats.undeliverable += UInt64(dropped)
    }
}
