public import Logging
public import ServiceLifecycle
import Foundation
public import ZMQ

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
    private let topology: Topology
    private let handlers: Handlers
    private let concurrency: Int
    private let context: Context
    private let logger: Logger
    private let thread: LoopThread
    private let authenticator = Shared<ZAPAuthenticator?>(nil)
    private let published = Shared(WorkerStats())
    private let boundEndpoint = Shared<String?>(nil)

    private let executionLogPath: String?

    /// A worker for `topology` running `handlers`, at most `concurrency` jobs at a time
    /// (default: the topology's `worker.concurrency`). With `executionLog`, every handler start
    /// is appended to that file (`client-id job-id attempt`, synced to disk), for fault tests.
    public init(topology: Topology, handlers: Handlers, concurrency: Int? = nil, context: Context? = nil,
                executionLog: String? = nil, logger: Logger = Logger(label: "taskmesh.worker")) throws {
        self.executionLogPath = executionLog
        self.topology = topology
        self.handlers = handlers
        self.concurrency = max(1, concurrency ?? topology.worker.concurrency)
        self.context = try context ?? Context()
        self.logger = logger
        self.thread = try LoopThread()
        // At most 64 + 1 + 10 + 1 + 10 bytes: well inside the protocol's 255.
        let host = String(ProcessInfo.processInfo.hostName.utf8.prefix(64)) ?? "worker"
        self.id = "\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Counters since start.
    public var stats: WorkerStats {
        var stats = published.value
        stats.rejectedPeers = authenticator.value?.counts.rejected ?? 0
        return stats
    }

    /// The endpoint this worker advertises to clients (direct and local mode), or the broker's
    /// endpoint it connects to (reliable mode); nil before `start()`.
    public var endpoint: String? { boundEndpoint.value }

    /// Binds the job socket, connects to the sink and starts taking jobs.
    public func start() async throws {
        let topology = self.topology, handlers = self.handlers, concurrency = self.concurrency
        let thread = self.thread, published = self.published
        let logger = self.logger, boundEndpoint = self.boundEndpoint, workerID = Array(id.utf8)
        let executionLog = try executionLogPath.map { try ExecutionLog(path: $0) }
        let reliable = topology.mode == .reliable
        try checkPlaintext(topology, endpoints: reliable ? [topology.broker.workersEndpoint]
                                                         : [topology.worker.bind, topology.sink.resultsEndpoint], logger: logger)
        let security = try RoleSecurity.load(topology, role: .worker)
        if let security, !reliable { authenticator.publish(try await ZAPAuthenticator.ensure(in: context, allowed: security.allowed, logger: logger)) }
        let sockets = SocketFactory(context: context, topology: topology, security: security)
        try await thread.start(name: "taskmesh-worker") { ready in
            let runner = JobRunner(handlers: handlers, limit: topology.limits.maxPayload, signal: thread.signal,
                                   executionLog: executionLog, checksSender: sockets.security != nil && !reliable, logger: logger)
            let endpoint: String
            let run: () -> Void
            do {
                if reliable {
                    let loop = try ReliableWorkerLoop(topology: topology, runner: runner, concurrency: concurrency, workerID: workerID,
                                                      sockets: sockets, thread: thread, published: published, logger: logger)
                    endpoint = topology.broker.workersEndpoint
                    run = loop.run
                } else {
                    let loop = try WorkerLoop(topology: topology, runner: runner, concurrency: concurrency, workerID: workerID,
                                              sockets: sockets, thread: thread, published: published, logger: logger)
                    endpoint = loop.identity.endpoint
                    run = loop.run
                }
            } catch {
                ready(error)
                return
            }
            boundEndpoint.publish(endpoint)
            ready(nil)
            logger.info("worker ready", metadata: ["endpoint": "\(endpoint)", "mode": "\(topology.mode.rawValue)",
                                                   "handlers": "\(handlers.names.joined(separator: ","))"])
            run()
        }
    }

    /// Re-reads the allowlists named by the topology's `security.allow`: later handshakes are
    /// checked against them (a removed key cannot connect again; its live connections stay up
    /// until this server restarts). Does nothing without security. Throws when a key file cannot
    /// be read; the old lists then stay in force.
    public func reloadAllowlists() throws {
        try TaskMesh.reloadAllowlists(topology: topology, authenticator: authenticator.value, logger: logger)
    }

    /// Stops gracefully (see the type's documentation) and waits until the worker has exited.
    public func stop() async {
        thread.requestStop()
        await thread.waitUntilExited()
    }

    /// Serves until graceful shutdown or cancellation (starting first unless `start()` was
    /// called), then stops gracefully.
    public func run() async throws {
        if endpoint == nil { try await start() }
        await waitForCancellationOrShutdown()
        await stop()
    }
}
