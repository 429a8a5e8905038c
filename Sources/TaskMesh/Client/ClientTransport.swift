import Logging
import ZMQ

/// How a client's jobs reach workers and how their answers come back: the part of a client
/// that differs between direct mode (a PUSH per worker, the sink's DEALER) and reliable mode
/// (one DEALER to the broker).
///
/// `ClientLoop` owns what every transport shares: the pending jobs, the inbox, deadlines,
/// retries held at the client, and ending each job exactly once. A transport owns its sockets
/// and what it knows of its peers, and calls back into the loop to send what waits and to
/// deliver what arrives. Both run on the client's loop thread only. Adding a transport touches
/// neither the loop nor the other transports.
protocol ClientTransport: AnyObject, SendableMetatype {
    /// What the transport meets its peers at: the topology's sink or broker.
    associatedtype Hub: Sendable

    init(core: ClientCore, topology: Topology, hub: Hub, sockets: SocketFactory, logger: Logger) throws

    /// The socket answers arrive on (results, progress, and the hub's own messages); the loop
    /// polls it first.
    var inbound: Socket { get }
    /// Workers known to take jobs now.
    var workerCount: Int { get }
    /// Whether any job could leave now (direct mode: some worker is linked).
    var canSend: Bool { get }

    /// Changes whenever `addPollItems` would add other items.
    var pollGeneration: Int { get }
    /// Adds the transport's own sockets to a poller that already holds `inbound` and the loop's
    /// wake-up signal.
    func addPollItems(to poller: inout Poller)
    /// Sets what the loop waits for on `inbound` (at `inboundIndex`) and on the transport's
    /// items, given whether jobs are waiting to leave.
    func setInterest(in poller: inout Poller, inboundIndex: Int, jobsWaiting: Bool)

    /// Sends waiting jobs (`loop.pending`) until no socket takes more.
    func sendJobs(_ loop: ClientLoop<Self>)
    /// Decodes one message read from `inbound` and hands it to `loop` (results, progress) or
    /// applies it (the hub's own messages).
    func receive(_ message: [UInt8], _ loop: ClientLoop<Self>) throws(ProtocolViolation)
    /// Handles an answer whose meaning depends on the transport (a retry or a withdrawn handler
    /// in direct mode); returns whether it did, so the loop does not end the job.
    func intercept(_ result: ResultMessage, _ loop: ClientLoop<Self>) -> Bool

    /// A job sent to `worker` (a link id; 0 when it went to a hub) was answered or given up.
    func answered(by worker: UInt32)
    /// Sends a CANCEL for a job sent to `worker`; returns whether a socket took it.
    func sendCancel(_ message: [UInt8], worker: UInt32) -> Bool
    /// Why no worker could take `job`, when this transport can tell (nil: it cannot, or one can).
    func missingWorkers(for job: Submission) -> String?
    /// Sends this client's heartbeat to its hub.
    func beat(now: Instant)
    /// Closes every socket; each may deliver what it holds for up to `linger`.
    func close(linger: Duration)
}

extension ClientTransport {
    var pollGeneration: Int { 0 }
    func addPollItems(to poller: inout Poller) {}
    func intercept(_ result: ResultMessage, _ loop: ClientLoop<Self>) -> Bool { false }
    func answered(by worker: UInt32) {}
    func missingWorkers(for job: Submission) -> String? { nil }
}

extension ClientTransport {
    /// The DEALER a client's answers arrive on: connected to its hub (the sink or the broker) at
    /// `endpoint`, under the client's id as routing id. In a secure mesh the hub's public key is
    /// `key` of the role's security, which must be set (`field` names it in the error).
    static func connectHub(_ endpoint: String, key: KeyPath<RoleSecurity, [UInt8]?>, field: String,
                           core: ClientCore, sockets: SocketFactory) throws -> Socket {
        let serverKey = try sockets.security.map { (security) throws(SecurityError) in
            try security.require(security[keyPath: key], field)
        }
        let socket = try sockets.makeClient(.dealer, serverKey: serverKey)
        do {
            try socket.set(.routingID, core.clientID)
            try socket.connect(endpoint)
        } catch {
            socket.close()
            throw error
        }
        return socket
    }
}
