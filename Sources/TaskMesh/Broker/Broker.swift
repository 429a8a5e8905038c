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
    private let service: RoleService<BrokerStats, (clients: String, workers: String)>
    private let hub: Topology.Broker

    /// A broker for `topology`. Throws `TopologyError` for a local or direct topology, which has
    /// a sink instead.
    public init(topology: Topology, context: MeshContext? = nil, logger: Logger = Logger(label: "taskmesh.broker")) throws {
        hub = try topology.brokerToServe()
        service = try RoleService(.broker, topology: topology, context: context, logger: logger)
    }

    /// Counters since start.
    public var stats: BrokerStats { service.stats }

    /// The endpoints the broker listens on (a port 0 replaced by the real one); nil before start.
    public var endpoints: (clients: String, workers: String)? { service.endpoints }

    /// Binds both endpoints and starts serving; returns once they are bound.
    ///
    /// A broker starts once: `start()` on one that is starting, running or stopped throws
    /// `RoleStateError`, and a start that throws leaves it stopped.
    public func start() async throws {
        let topology = service.topology, hub = self.hub, thread = service.thread, logger = service.logger, published = service.published
        try await service.start(checking: [hub.clientsBind, hub.workersBind], serves: true) { sockets in
            let loop = try BrokerLoop(topology: topology, hub: hub, sockets: sockets, thread: thread, published: published, logger: logger)
            logger.info("broker listening", metadata: ["clients": "\(loop.boundEndpoints.clients)", "workers": "\(loop.boundEndpoints.workers)"])
            return (loop.boundEndpoints, loop.run)
        }
    }

    /// Where the broker is in its life (`idle` until `start()`).
    public var state: RoleState { service.state }

    /// Re-reads the allowlists named by the topology's `security.allow` (see `Sink`).
    public func reloadAllowlists() throws { try service.reloadAllowlists() }

    /// Stops serving and waits until the sockets are closed; returns at once for one never
    /// started (which can then not start) or already stopped, and waits for a start or stop
    /// under way.
    public func stop() async { await service.stop() }

    /// Serves until graceful shutdown or cancellation (starting first unless `start()` was
    /// called), then stops.
    public func run() async throws { try await service.run(start: start) }
}
