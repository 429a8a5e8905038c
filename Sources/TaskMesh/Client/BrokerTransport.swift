import Logging
import ZMQ

/// Reliable mode at the client: one DEALER connected to the broker carries jobs out and
/// results and heartbeats in (docs/PROTOCOL.md, section 6.2). When the broker was lost
/// (silence) or replaced (a new instance id), every job sent and not yet answered is sent
/// again under its id, and the broker's dedup keeps it from running twice.
final class BrokerTransport: ClientTransport {
    let topology: Topology
    let logger: Logger
    /// The broker's DEALER: jobs out, results and heartbeats in.
    let inbound: Socket
    // What the broker last said of itself.
    private var brokerInstance: UInt64?
    private var brokerWorkers = 0
    private var brokerHeardAt: Instant?

    init(core: ClientCore, topology: Topology, hub: Topology.Broker, sockets: SocketFactory, logger: Logger) throws {
        self.topology = topology
        self.logger = logger
        inbound = try Self.connectHub(hub.clientsEndpoint, key: \.brokerKey, field: "security.servers.broker",
                                      core: core, sockets: sockets)
    }

    /// The workers the broker last reported ready.
    var workerCount: Int { brokerWorkers }
    var canSend: Bool { true }

    func setInterest(in poller: inout Poller, inboundIndex: Int, jobsWaiting: Bool) {
        poller.setInterest(jobsWaiting ? [.readable, .writable] : .readable, at: inboundIndex)
    }

    /// Everything goes to the broker; jobs that are waiting together leave together as JOBS,
    /// those with their own priority or labels in batches that carry them.
    func sendJobs(_ loop: ClientLoop<BrokerTransport>) {
        while let job = loop.pending.nextToSend() {
            let (message, span, _) = loop.nextJobMessage(startingWith: job, destinations: 1, sameRoute: nil, carryingOptions: true)
            do {
                guard try inbound.trySend(message) else { return }
            } catch {
                logger.error("sending jobs failed: \(error)")
                return
            }
            loop.pending.markSent(span: span)
        }
    }

    func receive(_ message: [UInt8], _ loop: ClientLoop<BrokerTransport>) throws(ProtocolViolation) {
        switch try FromBroker.decode(message) {
        case .result(let result): loop.handle(result)
        case .results(let batch): loop.handle(batch)
        case .heartbeat(let heartbeat): brokerSpoke(heartbeat, loop)
        case .progress(let progress): loop.handle(progress)
        case .job, .jobs, .disconnect, .cancel: loop.stats.malformed += 1
        }
    }

    /// A heartbeat from the broker. A broker that was silent for the liveness period, or that
    /// is a new instance, may have lost the jobs it held: send them again.
    private func brokerSpoke(_ heartbeat: HeartbeatMessage, _ loop: ClientLoop<BrokerTransport>) {
        let now = Instant.current
        let wasLost = brokerHeardAt.map { now - $0 > topology.heartbeat.expiry } ?? false
        let replaced = brokerInstance.map { $0 != heartbeat.instance } ?? false
        brokerHeardAt = now
        brokerInstance = heartbeat.instance
        brokerWorkers = Int(heartbeat.workers)
        if wasLost || replaced {
            let count = loop.pending.requeueAllSent()
            loop.stats.resent += UInt64(count)
            if count > 0 { logger.info("broker came back; sending unanswered jobs again", metadata: ["jobs": "\(count)"]) }
        }
    }

    func sendCancel(_ message: [UInt8], worker: UInt32) -> Bool {
        (try? inbound.trySend(message)) == true
    }

    func beat(now: Instant) {
        if let heard = brokerHeardAt, now - heard > topology.heartbeat.expiry {
            brokerWorkers = 0  // a lost broker reports no workers until it speaks again
        }
        _ = try? inbound.trySend(bareCommand(.heartbeat))
    }

    func close(linger: Duration) {
        try? inbound.set(.linger, linger)
        inbound.close()
    }
}
