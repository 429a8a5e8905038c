public import Logging
public import ServiceLifecycle
import ZMQ

/// The broker of reliable mode: clients and workers both connect to it.
///
/// It queues jobs (up to `broker.queue_limit`), hands them to workers that have free slots
/// (workers announce their concurrency as credit: load balancing, not round robin) and that
/// serve the job's handler and carry every label it requires; a job no live worker can run waits
/// for one to join, and ends `noWorkers` after `broker.unroutable_timeout` or at its deadline.
/// Higher priorities go first; a priority whose oldest job has waited rises one step per second,
/// so lower ones are not starved; clients of one priority take turns, one job each, so a flood
/// from one does not hold up another.
///
/// It watches every attempt: a worker silent for `heartbeat.liveness` intervals is dead and its
/// jobs go to another worker; an attempt that overruns `broker.lease` does too, even while its
/// worker still heartbeats. Results of superseded attempts are dropped. After `broker.max_attempts` a job ends
/// as `attemptsExhausted`. A resubmitted job id is not run again: while it runs the resubmission
/// is ignored; once done, the cached outcome is returned (for `broker.result_ttl`).
///
/// The broker keeps its state in memory: if it dies, queued jobs are lost there, and clients send
/// their unanswered jobs again, under the same ids, when a broker is back.
public final class Broker: Service, Sendable {
    private let host: RoleHost
    private let published = Shared(BrokerStats())
    private let bound = Shared<(clients: String, workers: String)?>(nil)

    public init(topology: Topology, context: MeshContext? = nil, logger: Logger = Logger(label: "taskmesh.broker")) throws {
        host = try RoleHost(topology: topology, context: context?.zmq, logger: logger)
    }

    /// Counters since start.
    public var stats: BrokerStats {
        var stats = published.value
        stats.rejectedPeers = host.rejectedPeers
        return stats
    }

    /// The endpoints the broker listens on (a port 0 replaced by the real one); nil before start.
    public var endpoints: (clients: String, workers: String)? { bound.value }

    /// Binds both endpoints and starts serving; returns once they are bound.
    ///
    /// A broker starts once: `start()` on one that is starting, running or stopped throws
    /// `RoleStateError`, and a start that throws leaves it stopped.
    public func start() async throws {
        try await host.start("broker") { try await startServing() }
    }

    /// Where the broker is in its life (`idle` until `start()`).
    public var state: RoleState { host.lifecycle }

    private func startServing() async throws {
        let topology = host.topology
        let sockets = try await host.prepare(role: .broker, endpoints: [topology.broker.clientsBind, topology.broker.workersBind], serves: true)
        let thread = host.thread, logger = host.logger, published = self.published, bound = self.bound
        try await host.launch(name: "taskmesh-broker") {
            let loop = try BrokerLoop(topology: topology, sockets: sockets, thread: thread, published: published, logger: logger)
            bound.publish(loop.boundEndpoints)
            logger.info("broker listening", metadata: ["clients": "\(loop.boundEndpoints.clients)", "workers": "\(loop.boundEndpoints.workers)"])
            return loop.run
        }
    }

    /// Re-reads the allowlists named by the topology's `security.allow` (see `Sink`).
    public func reloadAllowlists() throws { try host.reloadAllowlists() }

    /// Stops serving and waits until the sockets are closed; returns at once for one never
    /// started (which can then not start) or already stopped, and waits for a start or stop
    /// under way.
    public func stop() async { await host.stop() }

    public func run() async throws {
        try await host.run(started: endpoints != nil, start: start)
    }
}
