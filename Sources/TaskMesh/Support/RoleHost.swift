import Logging
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

    /// Starts the loop thread: `setUp` runs on it, creates the role's sockets (throwing fails the
    /// start) and returns the loop to run there. Returns once `setUp` has returned.
    func launch(name: String, _ setUp: @escaping @Sendable () throws -> () -> Void) async throws {
        try await thread.start(name: name) { ready in
            let run: () -> Void
            do {
                run = try setUp()
            } catch {
                ready(error)
                return
            }
            ready(nil)
            run()
        }
    }

    /// Peers this process's ZAP handler turned away.
    var rejectedPeers: UInt64 { authenticator.value?.counts.rejected ?? 0 }

    func reloadAllowlists() throws {
        try TaskMesh.reloadAllowlists(topology: topology, authenticator: authenticator.value, logger: logger)
    }

    /// Stops the loop (which closes the role's sockets) and, when the role owns its context,
    /// terminates the context so that what the sockets still queue (a stopping worker's last
    /// results, a sink's last forwards) leaves before the process can exit.
    func stop() async {
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
        if !started { try await start() }
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
