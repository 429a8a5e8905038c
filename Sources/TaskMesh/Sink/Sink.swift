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
    private let host: RoleHost
    private let published = Shared(SinkStats())
    private let bound = Shared<(results: String, clients: String)?>(nil)

    /// A sink for `topology`. `context` must be shared with the other roles in local mode
    /// (inproc endpoints live inside one context).
    public init(topology: Topology, context: MeshContext? = nil, logger: Logger = Logger(label: "taskmesh.sink")) throws {
        host = try RoleHost(topology: topology, context: context?.zmq, logger: logger)
    }

    /// Counters since start.
    public var stats: SinkStats {
        var stats = published.value
        stats.rejectedPeers = host.rejectedPeers
        return stats
    }

    /// The endpoints the sink listens on, with the real port where the topology said 0; nil
    /// before `start()`.
    public var endpoints: (results: String, clients: String)? { bound.value }

    /// Binds the sink's endpoints and starts serving; returns once they are bound. Throws when
    /// an endpoint cannot be bound (`ZMQError`: address in use, invalid endpoint, ...), a key
    /// file is bad, or the security self-test fails (`SecurityError`).
    ///
    /// A sink starts once: `start()` on one that is starting, running or stopped throws
    /// `RoleStateError`, and a start that throws leaves it stopped.
    public func start() async throws {
        try await host.start("sink") { try await startServing() }
    }

    /// Where the sink is in its life (`idle` until `start()`).
    public var state: RoleState { host.lifecycle }

    private func startServing() async throws {
        let topology = host.topology
        let sockets = try await host.prepare(role: .sink, endpoints: [topology.sink.resultsBind, topology.sink.clientsBind], serves: true)
        let thread = host.thread, logger = host.logger, published = self.published, bound = self.bound
        try await host.launch(name: "taskmesh-sink") {
            let loop = try SinkLoop(topology: topology, sockets: sockets, thread: thread, published: published, logger: logger)
            bound.publish(loop.boundEndpoints)
            logger.info("sink listening", metadata: ["results": "\(loop.boundEndpoints.results)", "clients": "\(loop.boundEndpoints.clients)"])
            return loop.run
        }
    }

    /// Re-reads the allowlists named by the topology's `security.allow`: later handshakes are
    /// checked against them (a removed key cannot connect again; its live connections stay up
    /// until this server restarts). Does nothing without security. Throws when a key file cannot
    /// be read; the old lists then stay in force.
    public func reloadAllowlists() throws { try host.reloadAllowlists() }

    /// Stops serving and waits until the sockets are closed; returns at once for one never
    /// started (which can then not start) or already stopped, and waits for a start or stop
    /// under way.
    public func stop() async { await host.stop() }

    /// Serves until graceful shutdown or cancellation (starting first unless `start()` was
    /// called), then stops.
    public func run() async throws {
        try await host.run(started: endpoints != nil, start: start)
    }
}
