public import Logging
import ZMQ

/// The front door: made from a topology (or the in-process default), it hands out clients and
/// workers. The same client and worker code runs under every topology.
///
/// ```swift
/// let mesh = try await Mesh.start()                  // local mode: everything in this process
/// var handlers = Handlers()
/// try handlers.register("add", as: Add.self) { Sum(value: $0.x + $0.y) }
/// _ = try await mesh.worker(handlers)
/// let client = try await mesh.client()
/// let sum: Sum = try await client.submit("add", Add(x: 1, y: 2))
/// await mesh.shutdown()
/// ```
///
/// In local mode the mesh runs its own sink over inproc; in direct mode the sink is a separate
/// process (`taskmesh sink`) or a `Sink` you run, and in reliable mode the broker is a separate
/// process (`taskmesh broker`) or a `Broker` you run; the mesh connects to it. `shutdown()` stops
/// every client and worker the mesh handed out, workers first so their last results arrive.
public final class Mesh: Sendable {
    /// The topology this mesh follows.
    public let topology: Topology
    private let context: MeshContext
    private let logger: Logger
    private let localSink: Sink?
    private let workers = Shared<[Worker]>([])
    private let clients = Shared<[Client]>([])

    /// Starts a mesh for `topology` (default: `TASKMESH_TOPOLOGY` if set, else local mode).
    public static func start(topology: Topology? = nil, logger: Logger = Logger(label: "taskmesh")) async throws -> Mesh {
        let topology = try topology ?? Topology.fromEnvironment()
        try LibZMQ.requireSupported()
        let context = MeshContext(try Context())
        var sink: Sink?
        if topology.mode == .local {
            let local = try Sink(topology: topology, context: context, logger: logger)
            try await local.start()
            sink = local
        }
        return Mesh(topology: topology, context: context, logger: logger, localSink: sink)
    }

    private init(topology: Topology, context: MeshContext, logger: Logger, localSink: Sink?) {
        self.topology = topology
        self.context = context
        self.logger = logger
        self.localSink = localSink
    }

    /// Connects a new client.
    public func client() async throws -> Client {
        let client = try await Client.connect(topology: topology, context: context, logger: logger)
        clients.update { $0.append(client) }
        return client
    }

    /// Starts a worker running `handlers` (at most `concurrency` jobs at once; default: the
    /// topology's `worker.concurrency`) and carrying `labels` (default: the topology's
    /// `worker.labels`), and returns once it listens.
    @discardableResult
    public func worker(_ handlers: Handlers, concurrency: Int? = nil, labels: Set<String>? = nil) async throws -> Worker {
        var topology = self.topology
        if let labels { topology.worker.labels = labels }
        let worker = try Worker(topology: topology, handlers: handlers, concurrency: concurrency, context: context, logger: logger)
        try await worker.start()
        workers.update { $0.append(worker) }
        return worker
    }

    /// The in-process sink of local mode; nil in direct mode.
    public var sink: Sink? { localSink }

    /// How long `shutdown()` waits for the last messages of its sockets to leave.
    static let flushTimeout: Duration = .seconds(1)

    /// Stops every worker (gracefully, side by side), then every client, then the local sink,
    /// then waits up to a second for what their sockets still queue (last results, a CANCEL)
    /// to leave, so a process may exit right after. The mesh makes no client or worker after.
    public func shutdown() async {
        let stopping = workers.update { list in defer { list = [] }; return list }
        await withTaskGroup(of: Void.self) { group in
            for worker in stopping { group.addTask { await worker.stop() } }
        }
        for client in clients.update({ list in defer { list = [] }; return list }) { await client.close() }
        await localSink?.stop()
        _ = await context.zmq.terminate(waitingAtMost: Self.flushTimeout)
    }
}
