import Logging
import Synchronization
import ServiceLifecycle
import ZMQ

/// What the long-running roles (sink, broker, worker) share: their context and loop thread,
/// their keys and ZAP handler, and how they start, stop, reload allowlists and run as a
/// `Service`.
final class RoleHost: Sendable {
    let topology: Topology
    let context: Context
    let logger: Logger
    let thread: LoopThread
    private let authenticator = Shared<ZAPAuthenticator?>(nil)
    /// The role made its own context (it was given none), so stopping may terminate it.
    private let ownsContext: Bool
    private let state = Mutex(RoleState.idle)
    /// Open once a start has succeeded or failed, and once a stop has finished.
    private let startSettled = Latch()
    private let stopFinished = Latch()

    /// How long a stopping role waits for its last messages to leave (each socket's LINGER
    /// bounds its own part).
    static let flushTimeout: Duration = .seconds(3)

    init(topology: Topology, context: Context?, logger: Logger) throws {
        self.topology = topology
        self.ownsContext = context == nil
        self.context = try context ?? Context()
        self.logger = logger
        self.thread = try LoopThread()
    }

    /// Refuses plaintext beyond loopback (unless `insecure`), loads `role`'s keys, starts the
    /// context's ZAP handler when the role has server sockets, and returns the socket factory.
    func prepare(role: Topology.Role, endpoints: [String], serves: Bool) async throws -> SocketFactory {
        try checkPlaintext(topology, endpoints: endpoints, logger: logger)
        let security = try RoleSecurity.load(topology, role: role)
        if let security, serves {
            authenticator.publish(try await ZAPAuthenticator.ensure(in: context, allowed: security.allowed, logger: logger))
        }
        return SocketFactory(context: context, topology: topology, security: security)
    }

    /// Peers this process's ZAP handler turned away.
    var rejectedPeers: UInt64 { authenticator.value?.counts.rejected ?? 0 }

    func reloadAllowlists() throws {
        try TaskMesh.reloadAllowlists(topology: topology, authenticator: authenticator.value, logger: logger)
    }

    /// The role's lifecycle now.
    var lifecycle: RoleState { state.withLock { $0 } }

    /// Runs `body` (the role's start) once: from `idle` only; `RoleStateError` otherwise. A
    /// start that throws leaves the role `stopped` (a role starts at most once: make a new one).
    func start(_ role: String, _ body: () async throws -> Void) async throws {
        try state.withLock { (state) throws(RoleStateError) in
            guard state == .idle else { throw RoleStateError(role: role, state: state) }
            state = .starting
        }
        do {
            try await body()
        } catch {
            state.withLock { $0 = .stopped }
            thread.abandon()  // its loop may never have started: stop() must not wait for it
            startSettled.open()
            stopFinished.open()
            throw error
        }
        state.withLock { $0 = .running }
        startSettled.open()
    }

    /// Stops the role and returns once it has stopped: at once for a role never started (it
    /// can then not start) or already stopped; after the start for one starting; after the other
    /// stop for one stopping.
    func stop() async {
        let previous = state.withLock { state -> RoleState in
            let previous = state
            switch state {
            case .idle: state = .stopped
            case .running: state = .stopping
            case .starting, .stopping, .stopped: break
            }
            return previous
        }
        switch previous {
        case .idle:
            stopFinished.open()
        case .starting:
            await startSettled.wait()
            await stop()
        case .stopping, .stopped:
            await stopFinished.wait()
        case .running:
            await shutDown()
            state.withLock { $0 = .stopped }
            stopFinished.open()
        }
    }

    /// Stops the loop (which closes the role's sockets) and, when the role owns its context,
    /// terminates the context so that what the sockets still queue (a stopping worker's last
    /// results, a sink's last forwards) leaves before the process can exit.
    private func shutDown() async {
        thread.requestStop()
        await thread.waitUntilExited()
        guard ownsContext else { return }
        await authenticator.value?.stop()
        if !(await context.terminate(waitingAtMost: Self.flushTimeout)) {
            logger.warning("messages still queued after \(Self.flushTimeout) were dropped")
        }
    }

    /// The `Service` contract: start unless started, serve until graceful shutdown or
    /// cancellation, then stop.
    func run(started: Bool, start: () async throws -> Void) async throws {
        if !started && lifecycle == .idle { try await start() }
        await waitForCancellationOrShutdown()
        await stop()
    }
}

/// Where a sink, broker or worker is in its life: `idle` until `start()`, `starting` while it
/// binds or connects, `running`, `stopping` while it drains, `stopped` after `stop()` or a failed
/// start. Each role starts at most once.
public enum RoleState: Sendable, Hashable {
    case idle, starting, running, stopping, stopped
}

/// `start()` called on a role that is not `idle`: it is starting or running already, or it has
/// stopped (a role starts at most once: make a new one).
public struct RoleStateError: Error, Hashable, Sendable, CustomStringConvertible {
    public let role: String
    public let state: RoleState
    public var description: String {
        switch state {
        case .starting, .running: "the \(role) is already \(state == .running ? "running" : "starting"); start() runs once"
        default: "the \(role) has stopped (or failed to start); make a new one to start again"
        }
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
