public import Logging
public import ServiceLifecycle
import Foundation
import ZMQ

/// A worker: runs the handlers it was given on jobs that clients push to it, and sends every
/// outcome to the sink, which routes it to the submitting client.
///
/// Delivery is at most once in direct mode: a job queued at a worker that dies is lost and ends
/// as `timedOut` at its client. A worker that stops gracefully (SIGTERM under `taskmesh worker`,
/// `stop()`, or graceful shutdown of its `ServiceGroup`) leaves the membership at once, hands
/// back jobs it has not started (clients send them elsewhere), lets running jobs finish within
/// `worker.drain_timeout`, then exits.
public final class Worker: Service, Sendable {
    /// This worker's id, unique in the mesh.
    public let id: String
    private let service: RoleService<WorkerStats, String>
    private let handlers: Handlers
    private let concurrency: Int
    private let executionLogPath: String?
    private let handlerUpdates = Shared<Handlers?>(nil)

    /// A worker for `topology` running `handlers`, at most `concurrency` jobs at a time
    /// (default: the topology's `worker.concurrency`). With `executionLog`, every handler start
    /// is appended to that file (`client-id job-id attempt`, synced to disk), for fault tests.
    /// Throws `TopologyError` for a concurrency outside 1 to `Topology.Worker.maximumConcurrency`.
    public init(topology: Topology, handlers: Handlers, concurrency: Int? = nil, context: MeshContext? = nil,
                executionLog: String? = nil, logger: Logger = Logger(label: "taskmesh.worker")) throws {
        try Self.checkAdvertisable(handlers: handlers, labels: topology.worker.labels)
        service = try RoleService(.worker, topology: topology, context: context, logger: logger)
        self.handlers = handlers
        let concurrency = concurrency ?? topology.worker.concurrency
        guard (1...Topology.Worker.maximumConcurrency).contains(concurrency) else {
            throw TopologyError(source: "worker", field: "worker.concurrency",
                                message: "must be 1 to \(Topology.Worker.maximumConcurrency) jobs at once, got \(concurrency)")
        }
        self.concurrency = concurrency
        self.executionLogPath = executionLog
        // At most 64 + 1 + 10 + 1 + 10 bytes: well inside the protocol's 255.
        let hostName = String(ProcessInfo.processInfo.hostName.utf8.prefix(64)) ?? "worker"
        self.id = "\(hostName)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Counters since start.
    public var stats: WorkerStats { service.stats }

    /// The endpoint this worker advertises to clients (direct and local mode), or the broker's
    /// endpoint it connects to (reliable mode); nil before `start()`.
    public var endpoint: String? { service.endpoints }

    /// Binds the job socket (direct and local mode) or connects to the broker (reliable mode),
    /// and starts taking jobs. Throws for an endpoint that cannot be bound, a bad key file, a
    /// failed security self-test, or an execution log that cannot be opened.
    ///
    /// A worker starts once: `start()` on one that is starting, running or stopped throws
    /// `RoleStateError`, and a start that throws leaves it stopped.
    public func start() async throws {
        let topology = service.topology, reliable = topology.mode == .reliable, hub = topology.hub
        let executionLogPath = self.executionLogPath
        let handlers = self.handlers, handlerUpdates = self.handlerUpdates, concurrency = self.concurrency, workerID = Array(id.utf8)
        let thread = service.thread, logger = service.logger, published = service.published
        let endpoints = switch hub {
        case .broker(let broker): [broker.workersEndpoint]
        case .local(let sink), .sink(let sink): [topology.worker.bind, sink.resultsEndpoint]
        }
        try await service.start(checking: endpoints, serves: !reliable) { sockets in
            let executionLog = try executionLogPath.map { try ExecutionLog(path: $0) }
            let runner = JobRunner(handlers: handlers, labels: topology.worker.labels, handlerUpdates: handlerUpdates, concurrency: concurrency, limit: topology.limits.maxPayload, signal: thread.signal,
                                   startObserver: executionLog, checksSender: sockets.security != nil && !reliable,
                                   published: published, logger: logger)
            let endpoint: String
            let run: () -> Void
            switch hub {
            case .broker(let broker):
                let loop = try ReliableWorkerLoop(topology: topology, broker: broker, runner: runner, concurrency: concurrency,
                                                  workerID: workerID, sockets: sockets, thread: thread, logger: logger)
                (endpoint, run) = (broker.workersEndpoint, loop.run)
            case .local(let sink), .sink(let sink):
                let loop = try WorkerLoop(topology: topology, sink: sink, runner: runner, concurrency: concurrency,
                                          workerID: workerID, sockets: sockets, thread: thread, logger: logger)
                (endpoint, run) = (loop.identity.endpoint, loop.run)
            }
            logger.info("worker ready", metadata: ["endpoint": "\(endpoint)", "mode": "\(topology.mode.rawValue)",
                                                   "handlers": "\(handlers.names.joined(separator: ","))"])
            return (endpoint, run)
        }
    }

    /// Where the worker is in its life (`idle` until `start()`).
    public var state: RoleState { service.state }

    /// Throws `TopologyError` (field `worker.labels`) for labels the wire cannot carry, and for
    /// more handlers than one worker may advertise (`Capabilities.maxHandlers`).
    static func checkAdvertisable(handlers: Handlers, labels: Set<String>) throws(TopologyError) {
        for label in labels.sorted() {
            if let problem = LabelRules.problem(with: label) { throw TopologyError(source: "worker", field: "worker.labels", message: problem) }
        }
        guard labels.count <= Capabilities.maxLabels else {
            throw TopologyError(source: "worker", field: "worker.labels", message: "at most \(Capabilities.maxLabels) labels, got \(labels.count)")
        }
        guard handlers.names.count <= Capabilities.maxHandlers else {
            throw TopologyError(source: "worker", field: nil,
                                message: "a worker advertises at most \(Capabilities.maxHandlers) handlers, got \(handlers.names.count)")
        }
    }

    /// Replaces the handlers this worker runs, while it runs: it advertises the new names at
    /// once (ANNOUNCE to the sink, READY to the broker), so clients and the broker route by
    /// them within a moment. Jobs already running finish with the handler they started with; a
    /// job for a removed handler that was already on its way is answered `unknownHandler`.
    /// Safe from any thread; before `start()` it sets the handlers `start()` uses.
    /// Throws for more handlers than a worker may advertise (`Capabilities.maxHandlers`).
    public func update(handlers: Handlers) throws(TopologyError) {
        try Self.checkAdvertisable(handlers: handlers, labels: [])
        handlerUpdates.publish(handlers)
        service.thread.signal.notify()
    }

    /// Re-reads the allowlists named by the topology's `security.allow` (see `Sink`).
    public func reloadAllowlists() throws { try service.reloadAllowlists() }

    /// Stops gracefully (see the type's documentation) and waits until the worker has exited;
    /// returns at once for one never started (which can then not start) or already stopped.
    public func stop() async { await service.stop() }

    /// Serves until graceful shutdown or cancellation (starting first unless `start()` was
    /// called), then stops gracefully.
    public func run() async throws { try await service.run(start: start) }
}
