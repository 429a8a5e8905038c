import Logging

/// The counters a long-running role publishes; `rejectedPeers` is filled in from the ZAP handler
/// when they are read.
protocol RoleCounters: Sendable {
    init()
    var rejectedPeers: UInt64 { get set }
}

/// What a sink, broker and worker share behind their public façades: one lifecycle (start
/// once, stop from any state, serve as a `Service`), the counters their loop publishes, the
/// endpoints it bound, and allowlist reloads. The façades add only what is their own (the loop
/// they run, their documentation).
final class RoleService<Counters: RoleCounters, Endpoints: Sendable>: Sendable {
    /// The role's name in errors and thread names ("sink", "broker", "worker").
    let name: String
    let role: Topology.Role
    let host: RoleHost
    /// What the loop publishes, from its thread.
    let published = Shared(Counters())
    private let bound = Shared<Endpoints?>(nil)

    init(_ role: Topology.Role, topology: Topology, context: MeshContext?, logger: Logger) throws {
        self.name = role.rawValue
        self.role = role
        host = try RoleHost(topology: topology, context: context?.zmq, logger: logger)
    }

    var topology: Topology { host.topology }
    var logger: Logger { host.logger }
    var thread: LoopThread { host.thread }

    /// Counters since start.
    var stats: Counters {
        var stats = published.value
        stats.rejectedPeers = host.rejectedPeers
        return stats
    }

    /// What the loop bound or connected to; nil before a start succeeded.
    var endpoints: Endpoints? { bound.value }

    var state: RoleState { host.lifecycle }

    /// Starts the role once (`RoleStateError` when it is not idle): checks `endpoints` for
    /// plaintext beyond loopback, loads the role's keys (and starts the ZAP handler when it
    /// `serves`), then runs `setUp` on the role's thread, which makes the loop's sockets and
    /// returns what they bound and the loop to run there. Returns once `setUp` has returned;
    /// any error it or the preparation throws fails the start and leaves the role stopped.
    func start(checking endpoints: [String], serves: Bool,
               _ setUp: @escaping @Sendable (SocketFactory) throws -> (endpoints: Endpoints, run: () -> Void)) async throws {
        try await host.start(name) {
            let sockets = try await host.prepare(role: role, endpoints: endpoints, serves: serves)
            let bound = self.bound
            try await host.thread.launch(name: "taskmesh-\(name)") {
                let (endpoints, run) = try setUp(sockets)
                bound.publish(endpoints)
                return run
            }
        }
    }

    /// Stops and returns once stopped (see `RoleHost.stop()`).
    func stop() async { await host.stop() }

    /// The `Service` contract: starts with `start` unless started, serves until graceful
    /// shutdown or cancellation, then stops.
    func run(start: () async throws -> Void) async throws {
        try await host.run(started: endpoints != nil, start: start)
    }

    func reloadAllowlists() throws { try host.reloadAllowlists() }
}
