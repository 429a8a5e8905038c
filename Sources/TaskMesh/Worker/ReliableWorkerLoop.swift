import Logging
import ZMQ

/// A reliable-mode worker's socket loop: one DEALER to the broker carries READY, HEARTBEAT, BYE
/// and DISCONNECT out, jobs in, and results out.
///
/// Liveness follows the Paranoid Pirate pattern: any message from the broker counts as its
/// heartbeat; after `heartbeat.liveness` silent intervals the worker drops its socket, connects
/// a new one and says READY again, waiting 1 s, then 2 s, ... up to 32 s between attempts while
/// the broker stays silent. A broker that restarted (a new instance id in its heartbeat) or that
/// says DISCONNECT is told READY again at once.
final class ReliableWorkerLoop {
    static let initialBackoff = Duration.seconds(1)
    static let maximumBackoff = Duration.seconds(32)

    private let topology: Topology
    private let workerID: [UInt8]
    private let sockets: SocketFactory
    private let thread: LoopThread
    private let runner: JobRunner
    private let logger: Logger

    private var broker: Socket
    private var brokerInstance: UInt64?
    private var heardAt: Instant = .current
    private var backoff = initialBackoff
    private var nextHeartbeat: Instant = .current
    private var draining: Instant?
    private let credit: WorkerCredit
    /// The round trip to the broker (HEARTBEAT probes), which the credit must cover, and the
    /// loop's busy time per job, which bounds how fast jobs of microseconds end.
    private var roundTrip = RoundTripEstimate()
    private var loopCost = LoopCost()
    /// The credit of the last READY, and the counts of timed and slow jobs when it was last
    /// reconsidered.
    private var announcedCredit = 0
    private var creditCheckedAt = 0
    private var slowJobsCheckedAt = 0
    /// Timed jobs between reconsiderations of the credit.
    static let creditCheckInterval = 64

    /// Where the broker takes workers.
    private let brokerEndpoint: String

    init(topology: Topology, broker hub: Topology.Broker, runner: JobRunner, concurrency: Int, workerID: [UInt8], sockets: SocketFactory,
         thread: LoopThread, logger: Logger) throws {
        self.topology = topology
        self.runner = runner
        self.workerID = workerID
        self.sockets = sockets
        self.thread = thread
        self.logger = logger
        credit = WorkerCredit(concurrency: concurrency, prefetch: topology.worker.prefetch,
                              sendHighWaterMark: topology.limits.sendHighWaterMark)
        brokerEndpoint = hub.workersEndpoint
        broker = try Self.connect(sockets, to: hub.workersEndpoint)
    }

    private static func connect(_ sockets: SocketFactory, to endpoint: String) throws -> Socket {
        // Not IMMEDIATE: READY and results queue until the connection completes.
        let brokerKey = try sockets.security.map { (security) throws(SecurityError) in try security.require(security.brokerKey, "security.servers.broker") }
        let socket = try sockets.makeClient(.dealer, serverKey: brokerKey, immediate: false)
        try socket.connect(endpoint)
        return socket
    }

    func run() {
        sendReady()
        while true {
            var poller = Poller()
            let brokerIndex = poller.add(broker)
            poller.add(thread.signal)
            let now = Instant.current
            if thread.isStopRequested && draining == nil { beginDraining(at: now) }
            if let giveUpAt = draining, runner.inFlight == 0 || now >= giveUpAt { break }

            let interest: Poller.Events = runner.hasResultsToSend ? [.readable, .writable] : .readable
            poller.setInterest(interest, at: brokerIndex)
            guard thread.wait(&poller, upTo: max(.zero, now.duration(to: runner.nextHousekeeping.map { min($0, nextHeartbeat) } ?? nextHeartbeat)), logger: logger) else { break }
            let woke = Instant.current, endedBefore = runner.jobsTimed
            if runner.applyHandlerUpdate() && draining == nil { sendReady(credit: announcedCredit) }
            runner.collectCompletions()
            if runner.jobsTimed >= creditCheckedAt + Self.creditCheckInterval || runner.slowJobs != slowJobsCheckedAt { reconsiderCredit() }
            if poller.events(at: brokerIndex).contains(.readable) {
                readBroker()
            } else if !roundTrip.ranDrySinceProbe && runner.waitingJobs == 0 {
                roundTrip.ranDry()
            }
            runner.startAccepted()
            runner.housekeeping(at: .current)
            runner.flush(to: broker)
            let done = Instant.current
            loopCost.record(busy: woke.duration(to: done), ended: runner.jobsTimed - endedBefore)
            if done >= nextHeartbeat { heartbeat() }
            runner.publishStats()
        }
        finish()
    }

    private func readBroker() {
        // A receive error is a message of more than one frame: no broker sends one.
        SocketDrain.messages(receive: { () throws(ZMQError) in try broker.tryReceive(maxFrames: 1) },
                             malformed: { runner.stats.malformed += 1 }) { frames in
            heardAt = .current
            backoff = Self.initialBackoff
            let frame = frames[0]
            guard let message = try? ReceivedMessage(frame) else {
                runner.stats.malformed += 1
                return
            }
            switch message.command {
            case .job, .jobs:
                runner.accept(frame, declining: draining != nil, receivedAt: heardAt)
            case .cancel:
                runner.cancel(frame)
            case .heartbeat:
                let heartbeat = try? HeartbeatMessage.decode(message)
                let instance = heartbeat?.instance
                if let instance, let known = brokerInstance, known != instance {
                    logger.info("broker restarted; announcing again")
                    sendReady()
                }
                brokerInstance = instance ?? brokerInstance
                if let echo = heartbeat?.echo, roundTrip.echoed(echo, at: heardAt, jobsWaiting: runner.waitingJobs) {
                    reconsiderCredit()  // a link slower than thought needs more jobs in flight at once
                }
            case .disconnect:
                logger.info("broker does not know this worker; announcing again")
                sendReady()
            default:
                runner.stats.malformed += 1
            }
        }
    }

    private func heartbeat() {
        let now = Instant.current
        nextHeartbeat = now + topology.heartbeat.interval
        if draining == nil && now - heardAt > topology.heartbeat.expiry + backoff - Self.initialBackoff {
            reconnect()
            return
        }
        let probe = roundTrip.sendingProbe(at: now)
        _ = try? broker.trySend(WorkerHeartbeat(held: UInt32(clamping: runner.unanswered), probe: probe).encode())
    }

    /// Paranoid Pirate: a new socket, READY again, and a longer wait before the next try.
    private func reconnect() {
        logger.warning("broker silent; reconnecting", metadata: ["backoff": "\(backoff)"])
        try? broker.set(.linger, .zero)
        broker.close()
        do {
            broker = try Self.connect(sockets, to: brokerEndpoint)
        } catch {
            logger.error("cannot reconnect to the broker: \(error)")
        }
        brokerInstance = nil
        heardAt = .current
        backoff = min(backoff * 2, Self.maximumBackoff)
        sendReady()
    }

    /// The credit for the jobs timed so far (`WorkerCredit`).
    private var creditNow: Int {
        credit.credit(meanJob: runner.meanJobDuration, meanPayloadBytes: runner.meanPayloadBytes, roundTrip: roundTrip.estimate,
                      loopCost: loopCost.perJob)
    }

    /// READY with `next` as the credit (by default the credit for the jobs timed so far); 0
    /// while draining.
    private func sendReady(credit next: Int? = nil) {
        announcedCredit = next ?? creditNow
        let ready = ReadyMessage(workerID: workerID, concurrency: draining == nil ? UInt16(clamping: announcedCredit) : 0,
                                 capabilities: runner.capabilities)
        _ = try? broker.trySend(ready.encode())
    }

    /// Announces READY again when the jobs' mean time moved the credit by a quarter or more
    /// (checked every `creditCheckInterval` jobs, and after every slow one, which can turn a
    /// worker of fast jobs into one of slow jobs at once). A smaller credit also hands back the
    /// waiting jobs it no longer covers: jobs prefetched while they looked fast must not wait
    /// behind slow ones while another worker is idle.
    private func reconsiderCredit() {
        creditCheckedAt = runner.jobsTimed
        slowJobsCheckedAt = runner.slowJobs
        let next = creditNow
        guard draining == nil, WorkerCredit.worthAnnouncing(next, over: announcedCredit) else { return }
        let shrinking = next < announcedCredit
        logger.debug("announcing a new credit", metadata: [
            "credit": "\(next)", "was": "\(announcedCredit)", "meanJob": "\(runner.meanJobDuration ?? .zero)",
            "roundTrip": "\(roundTrip.estimate ?? .zero)", "loopCost": "\(loopCost.perJob ?? .zero)",
        ])
        sendReady(credit: next)
        if shrinking { runner.declineWaiting(leaving: max(0, next - credit.concurrency)) }
    }

    /// BYE: the broker sends no more jobs; running ones finish within the drain timeout.
    private func beginDraining(at now: Instant) {
        draining = now + topology.worker.drainTimeout
        runner.declineQueued()
        _ = try? broker.trySend(ByeMessage(workerID: workerID).encode())
        logger.info("worker stopping", metadata: ["inFlight": "\(runner.inFlight)"])
    }

    /// DISCONNECT: the broker requeues whatever this worker still held.
    private func finish() {
        runner.close()
        if runner.inFlight > 0 {
            logger.warning("worker stopped with jobs still running; the broker gives them to others", metadata: ["inFlight": "\(runner.inFlight)"])
        }
        try? broker.set(.linger, .seconds(2))
        runner.flushBeforeClose(to: broker)
        try? broker.send(bareCommand(.disconnect), wait: false)
        broker.close()
    }
}
