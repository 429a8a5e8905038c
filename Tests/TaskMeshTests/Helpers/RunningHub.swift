import Foundation
import Testing
@testable import TaskMesh

/// A sink (direct mode) or broker (reliable mode) process started from a topology file, with the
/// endpoints its `ready` line reported: the one harness process tests start meshes with, in
/// either mode.
struct RunningHub {
    enum Kind: String, CaseIterable, Sendable { case direct, reliable }

    let kind: Kind
    let topologyPath: String
    let process: ChildProcess
    /// Where workers connect: the sink's results endpoint, or the broker's workers endpoint.
    let workers: String
    /// Where clients connect.
    let clients: String
    /// The sink's name for `workers`.
    var results: String { workers }

    /// `taskmesh sink` or `taskmesh broker` on the file at `topologyPath`; returns once it is ready.
    /// Starts a `taskmesh sink` or `broker` on `topologyPath`, run under `launcher` (a program
    /// and its arguments, such as `nice -n 19`) when given; returns once it is ready.
    static func start(_ kind: Kind, topologyPath: String, name: String? = nil, launcher: [String] = []) async throws -> RunningHub {
        let command = kind == .direct ? "sink" : "broker"
        let arguments = [command, "-t", topologyPath, "--log-level", "debug"]
        let process = launcher.isEmpty
            ? try ChildProcess(name ?? command, arguments)
            : try ChildProcess(name ?? command, executable: launcher[0], Array(launcher.dropFirst()) + [BuiltProducts.taskmesh] + arguments)
        let ready = fields(try await process.waitForLine(startingWith: "ready "))
        return RunningHub(kind: kind, topologyPath: topologyPath, process: process,
                          workers: try #require(ready[kind == .direct ? "results" : "workers"]),
                          clients: try #require(ready["clients"]))
    }

    static func start(_ topology: TestTopology, name: String = "sink") async throws -> RunningHub {
        try await start(.direct, topologyPath: topology.path, name: name)
    }

    static func start(_ topology: ReliableTopology, name: String = "broker") async throws -> RunningHub {
        try await start(.reliable, topologyPath: topology.path, name: name)
    }

    /// A `taskmesh worker` pointed at this hub (or at `relay`, a relay to it) with `arguments`
    /// added, run under `launcher` (a program and its arguments, such as `faketime -f +60s`) when
    /// given; returns once it is ready, with the fields of its `ready` line.
    func launchWorker(_ name: String, topologyPath: String? = nil, _ arguments: [String], launcher: [String] = [],
                      environment: [String: String] = [:], via relay: String? = nil) async throws -> (process: ChildProcess, ready: [String: String]) {
        let all = ["worker", "-t", topologyPath ?? self.topologyPath, kind == .direct ? "--sink" : "--broker", relay ?? workers,
                   "--log-level", "debug"] + arguments
        let process = launcher.isEmpty
            ? try ChildProcess(name, all, environment: environment)
            : try ChildProcess(name, executable: launcher[0], Array(launcher.dropFirst()) + [BuiltProducts.taskmesh] + all,
                               environment: environment)
        return (process, fields(try await process.waitForLine(startingWith: "ready ")))
    }

    /// A `taskmesh worker` serving only `handlers` (built-in names), with `labels`, logging every
    /// job it starts to `log`.
    func startWorker(_ name: String, handlers: [String], labels: [String] = [], concurrency: Int = 4, log: String,
                     launcher: [String] = [], environment: [String: String] = [:], extra: [String] = []) async throws -> ChildProcess {
        let arguments = ["--handlers", handlers.joined(separator: ","), "--concurrency", "\(concurrency)", "--execution-log", log]
            + labels.flatMap { ["--label", $0] } + extra
        return try await launchWorker(name, arguments, launcher: launcher, environment: environment).process
    }

    /// A `taskmesh worker` with every built-in handler and the fault handlers, logging every job
    /// it starts to `log`.
    func startWorker(_ topology: ReliableTopology, name: String, log: String) async throws -> ChildProcess {
        try await launchWorker(name, topologyPath: topology.path, ["--execution-log", log, "--fault-handlers"]).process
    }

    /// An in-process client of this hub, and the mesh that holds it; `topologyPath` (default: the
    /// hub's) gives the client's other settings. Both endpoints are set, so that in-process
    /// workers of the mesh (`Mesh.worker`) find the hub too.
    func connect(topologyPath: String? = nil) async throws -> (Mesh, Client) {
        var settings = try Topology.load(path: topologyPath ?? self.topologyPath)
        settings.sink?.clientsEndpoint = clients
        settings.sink?.resultsEndpoint = workers
        settings.broker?.clientsEndpoint = clients
        settings.broker?.workersEndpoint = workers
        let mesh = try await Mesh.start(topology: settings)
        return (mesh, try await mesh.client())
    }

    func connect(_ topology: ReliableTopology) async throws -> (Mesh, Client) {
        try await connect(topologyPath: topology.path)
    }

    /// Waits until `client` can reach workers of every one of `handlers` (direct mode: by their
    /// advertised handlers; reliable mode: `count` workers ready at the broker).
    func waitForWorkers(_ client: Client, count: Int, handlers: [String]) async throws {
        try await client.waitForWorkers(count, timeout: .seconds(10))
        for handler in handlers { try await client.waitForWorkers(1, handling: handler, timeout: .seconds(10)) }
    }
}

/// A worker process pointed at a sink, with the endpoint it advertises.
struct RunningWorker {
    let process: ChildProcess
    let endpoint: String

    static func start(_ topology: TestTopology, sink: RunningHub, name: String = "worker", concurrency: Int = 4) async throws -> RunningWorker {
        let (process, ready) = try await sink.launchWorker(name, topologyPath: topology.path, ["--concurrency", "\(concurrency)"])
        return RunningWorker(process: process, endpoint: try #require(ready["endpoint"]))
    }
}

/// An in-process client connected to a sink process, with the settings of `topology`.
func connectClient(_ topology: TestTopology, sink: RunningHub) async throws -> (Mesh, Client) {
    try await sink.connect(topologyPath: topology.path)
}
