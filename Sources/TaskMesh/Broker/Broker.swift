public import Logging
public import ServiceLifecycle
public import ZMQ

/// The broker of reliable mode: clients and workers both connect to it.
///
/// It queues jobs (up to `broker.queue_limit`), hands them to workers that have free slots
/// (workers announce their concurrency as credit: load balancing, not round robin), and watches
/// every attempt: a worker silent for `heartbeat.liveness` intervals is dead and its jobs go to
/// another worker; an attempt that overruns `broker.lease` does too, even while its worker still
/// heartbeats. Results of superseded attempts are dropped. After `broker.max_attempts` a job ends
/// as `attemptsExhausted`. A resubmitted job id is not run again: while it runs the resubmission
/// is ignored; once done, the cached outcome is returned (for `broker.result_ttl`).
///
/// The broker keeps its state in memory: if it dies, queued jobs are lost there, and clients send
/// their unanswered jobs again, under the same ids, when a broker is back.
public final class Broker: Service, Sendable {
    private let topology: Topology
    private let context: Context
    private let logger: Logger
    private let thread: LoopThread
    private let authenticator = Shared<ZAPAuthenticator?>(nil)
    private let published = Shared(BrokerStats())
    private let bound = Shared<(clients: String, workers: String)?>(nil)

    public init(topology: Topology, context: Context? = nil, logger: Logger = Logger(label: "taskmesh.broker")) throws {
        self.topology = topology
        self.context = try context ?? Context()
        self.logger = logger
        self.thread = try LoopThread()
    }

    /// Counters since start.
    public var stats: BrokerStats {
        var stats = published.value
        stats.rejectedPeers = authenticator.value?.counts.rejected ?? 0
        return stats
    }

    /// The endpoints the broker listens on (a port 0 replaced by the real one); nil before start.
    public var endpoints: (clients: String, workers: String)? { bound.value }

    /// Binds both endpoints and starts serving; returns once they are bound.
    public func start() async throws {
        let topology = self.topology, thread = self.thread, published = self.published, logger = self.logger
        let bound = self.bound
        try checkPlaintext(topology, endpoints: [topology.broker.clientsBind, topology.broker.workersBind], logger: logger)
        let security = try RoleSecurity.load(topology, role: .broker)
        if let security { authenticator.publish(try await ZAPAuthenticator.ensure(in: context, allowed: security.allowed, logger: logger)) }
        let sockets = SocketFactory(context: context, topology: topology, security: security)
        try await thread.start(name: "taskmesh-broker") { ready in
            let loop: BrokerLoop
            do {
                loop = try BrokerLoop(topology: topology, sockets: sockets, thread: thread, published: published, logger: logger)
            } catch {
                ready(error)
                return
            }
            bound.publish(loop.boundEndpoints)
            ready(nil)
            logger.info("broker listening", metadata: ["clients": "\(loop.boundEndpoints.clients)", "workers": "\(loop.boundEndpoints.workers)"])
            loop.run()
        }
    }

    /// Re-reads the allowlists named by the topology's `security.allow`: later handshakes are
    /// checked against them (a removed key cannot connect again; its live connections stay up
    /// until this server restarts). Does nothing without security. Throws when a key file cannot
    /// be read; the old lists then stay in force.
    public func reloadAllowlists() throws {
        try TaskMesh.reloadAllowlists(topology: topology, authenticator: authenticator.value, logger: logger)
    }

    /// Stops serving and waits until the sockets are closed.
    public func stop() async {
        thread.requestStop()
        await thread.waitUntilExited()
    }

    public func run() async throws {
        if endpoints == nil { try await start() }
        await waitForCancellationOrShutdown()
        await stop()
    }
}
