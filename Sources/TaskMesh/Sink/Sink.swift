public import Logging
public import ServiceLifecycle
public import ZMQ

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
    private let topology: Topology
    private let context: Context
    private let logger: Logger
    private let thread: LoopThread
    private let authenticator = Shared<ZAPAuthenticator?>(nil)
    private let published = Shared(SinkStats())
    private let bound = Shared<(results: String, clients: String)?>(nil)

    /// A sink for `topology`. `context` must be shared with the other roles in local mode
    /// (inproc endpoints live inside one context).
    public init(topology: Topology, context: Context? = nil, logger: Logger = Logger(label: "taskmesh.sink")) throws {
        self.topology = topology
        self.context = try context ?? Context()
        self.logger = logger
        self.thread = try LoopThread()
    }

    /// Counters since start.
    public var stats: SinkStats {
        var stats = published.value
        stats.rejectedPeers = authenticator.value?.counts.rejected ?? 0
        return stats
    }

    /// The endpoints the sink listens on, with the real port where the topology said 0; nil
    /// before `start()`.
    public var endpoints: (results: String, clients: String)? { bound.value }

    /// Binds the sink's endpoints and starts serving; returns once they are bound. Throws when
    /// an endpoint cannot be bound (`ZMQError`: address in use, invalid endpoint, ...).
    public func start() async throws {
        let topology = self.topology, thread = self.thread, published = self.published, logger = self.logger
        let bound = self.bound
        try checkPlaintext(topology, endpoints: [topology.sink.resultsBind, topology.sink.clientsBind], logger: logger)
        let security = try RoleSecurity.load(topology, role: .sink)
        if let security { authenticator.publish(try await ZAPAuthenticator.ensure(in: context, allowed: security.allowed, logger: logger)) }
        let sockets = SocketFactory(context: context, topology: topology, security: security)
        try await thread.start(name: "taskmesh-sink") { ready in
            let loop: SinkLoop
            do {
                loop = try SinkLoop(topology: topology, sockets: sockets, thread: thread, published: published, logger: logger)
            } catch {
                ready(error)
                return
            }
            bound.publish(loop.boundEndpoints)
            ready(nil)
            logger.info("sink listening", metadata: ["results": "\(loop.boundEndpoints.results)", "clients": "\(loop.boundEndpoints.clients)"])
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

    /// Serves until graceful shutdown or cancellation (starting first unless `start()` was
    /// called), then stops.
    public func run() async throws {
        if endpoints == nil { try await start() }
        await waitForCancellationOrShutdown()
        await stop()
    }
}

/// Suspends until the task is cancelled or graceful shutdown is triggered.
func waitForCancellationOrShutdown() async {
    let (stream, continuation) = AsyncStream<Void>.makeStream()
    await withTaskCancellationHandler {
        await withGracefulShutdownHandler {
            for await _ in stream {}
        } onGracefulShutdown: {
            continuation.finish()
        }
    } onCancel: {
        continuation.finish()
    }
}
