public import Logging
public import ServiceLifecycle
import ZMQ

/// The sink of direct mode: the one stable endpoint of a mesh. Workers send it results and
/// announce themselves to it; clients connect to it to receive their results and the list of
/// live workers.
///
/// The sink keeps no queue and no job state: restarting it loses only the results in flight at
/// that moment, and clients and workers reconnect and announce themselves again on their own.
///
/// As a `Service`, `run()` serves until graceful shutdown or cancellation, then closes its
/// sockets and returns. It throws when it cannot bind its endpoints.
public final class Sink: Service, Sendable {
    private let service: RoleService<SinkStats, (results: String, clients: String)>
    private let hub: Topology.Sink

    /// A sink for `topology`. `context` must be shared with the other roles in local mode
    /// (inproc endpoints live inside one context). Throws `TopologyError` for a reliable
    /// topology, which has a broker instead.
    public init(topology: Topology, context: MeshContext? = nil, logger: Logger = Logger(label: "taskmesh.sink")) throws {
        hub = try topology.sinkToServe()
        service = try RoleService(.sink, topology: topology, context: context, logger: logger)
    }

    /// Counters since start.
    public var stats: SinkStats { service.stats }

    /// The endpoints the sink listens on, with the real port where the topology said 0; nil
    /// before `start()`.
    public var endpoints: (results: String, clients: String)? { service.endpoints }

    /// Binds the sink's endpoints and starts serving; returns once they are bound. Throws when
    /// an endpoint cannot be bound (`ZMQError`: address in use, invalid endpoint, ...), a key
    /// file is bad, or the security self-test fails (`SecurityError`).
    ///
    /// A sink starts once: `start()` on one that is starting, running or stopped throws
    /// `RoleStateError`, and a start that throws leaves it stopped.
    public func start() async throws {
        let topology = service.topology, hub = self.hub, thread = service.thread, logger = service.logger, published = service.published
        try await service.start(checking: [hub.resultsBind, hub.clientsBind], serves: true) { sockets in
            let loop = try SinkLoop(topology: topology, hub: hub, sockets: sockets, thread: thread, published: published, logger: logger)
            logger.info("sink listening", metadata: ["results": "\(loop.boundEndpoints.results)", "clients": "\(loop.boundEndpoints.clients)"])
            return (loop.boundEndpoints, loop.run)
        }
    }

    /// Where the sink is in its life (`idle` until `start()`).
    public var state: RoleState { service.state }

    /// Re-reads the allowlists named by the topology's `security.allow`: later handshakes are
    /// checked against them (a removed key cannot connect again; its live connections stay up
    /// until this server restarts). Does nothing without security. Throws when a key file cannot
    /// be read; the old lists then stay in force.
    public func reloadAllowlists() throws { try service.reloadAllowlists() }

    /// Stops serving and waits until the sockets are closed; returns at once for one never
    /// started (which can then not start) or already stopped, and waits for a start or stop
    /// under way.
    public func stop() async { await service.stop() }

    /// Serves until graceful shutdown or cancellation (starting first unless `start()` was
    /// called), then stops.
    public func run() async throws { try await service.run(start: start) }
}
