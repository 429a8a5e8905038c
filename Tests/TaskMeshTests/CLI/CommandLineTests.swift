import Foundation
import Testing
@testable import TaskMesh

/// The `taskmesh` commands and the example executables, run as real processes.
@Suite struct CommandLineTests {
    @Test func versionPrintsBothVersions() async throws {
        let process = try ChildProcess("version", ["version"])
        #expect(try await process.waitForExit() == 0)
        #expect(process.stdout.contains("taskmesh "))
        #expect(process.stdout.contains("libzmq 4."))
    }

    /// Duration flags read the topology files' syntax, and help shows their defaults in it.
    @Test func durationFlagsSpeakTheTopologySyntax() async throws {
        let help = try ChildProcess("help", ["submit", "--help"])
        #expect(try await help.waitForExit() == 0)
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("(default: 10s)") && text.contains("(default: 100ms)"), "\(text)")
        let zero = try ChildProcess("zero", ["submit", "echo", "--deadline", "0s"])
        #expect(try await zero.waitForExit() != 0)
        #expect(zero.stderr.contains("--deadline must be more than 0s"), "\(zero.stderr)")
        let bare = try ChildProcess("bare", ["submit", "echo", "--deadline", "5"])
        #expect(try await bare.waitForExit() != 0)
        #expect(bare.stderr.contains("--deadline"), "\(bare.stderr)")
        // A fraction is fine: the error is only that no mesh is running (local mode refused).
        let fraction = try ChildProcess("fraction", ["submit", "echo", "--deadline", "1.5s"])
        #expect(try await fraction.waitForExit() != 0)
        #expect(fraction.stderr.contains("local mode"), "\(fraction.stderr)")
    }

    @Test func badTopologyFileNamesTheField() async throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).yaml")
        try "mode: direct\nsink:\n  results: { bind: \"tcp://127.0.0.1:5701\" }\n  clients: { bind: \"tcp://127.0.0.1:5702\" }\nheartbeat:\n  liveness: zero\n".write(to: url, atomically: true, encoding: .utf8)
        let process = try ChildProcess("sink", ["sink", "-t", url.path])
        #expect(try await process.waitForExit() != 0)
        #expect(process.stderr.contains("heartbeat.liveness"), "\(process.stderr)")
    }

    /// Routing flags are checked before anything starts, with a message naming the flag.
    @Test(arguments: [
        (["submit", "echo", "--priority", "0"], "--priority must be from 1 to 9, got 0"),
        (["submit", "echo", "--require", "has space"], "--require: a label holds letters"),
        (["worker", "--label", ""], "--label: a label must not be empty"),
        (["worker", "--handlers", "echo,resize"], "no built-in handler named \"resize\""),
        (["worker", "--broker", "tcp://127.0.0.1:5802"], "--broker applies to a reliable mesh; this topology is direct"),
        (["submit", "echo", "--broker", "tcp://127.0.0.1:5801"], "--broker applies to a reliable mesh; this topology is direct"),
    ])
    func badRoutingFlagsAreClearErrors(_ arguments: [String], _ message: String) async throws {
        let process = try ChildProcess(arguments[0], arguments + ["-t", "topologies/direct.yaml"])
        #expect(try await process.waitForExit() != 0)
        #expect(process.stderr.contains(message), "\(process.stderr)")
    }

    @Test func missingTopologyFileIsAClearError() async throws {
        let process = try ChildProcess("worker", ["worker", "-t", "/nonexistent/topology.yaml"])
        #expect(try await process.waitForExit() != 0)
        #expect(process.stderr.contains("/nonexistent/topology.yaml"), "\(process.stderr)")
    }

    @Test func demoRunsInLocalMode() async throws {
        let process = try ChildProcess("demo", ["demo", "--jobs", "500"], environment: ["TASKMESH_TOPOLOGY": ""])
        #expect(try await process.waitForExit(timeout: .seconds(60)) == 0, "\(process.stderr)")
        #expect(process.stdout.contains("local mode"))
        #expect(process.stdout.contains("add(x: 1, y: 2) = 3"))
        #expect(process.stdout.contains("nosuch -> noWorkers"))
        #expect(process.stdout.contains("500 sha256 jobs: 500 ok"))
    }

    @Test func demoRunsUnchangedInDirectMode() async throws {
        let topology = try fixedPortTopology()
        let process = try ChildProcess("demo", ["demo", "--jobs", "500", "-t", topology])
        #expect(try await process.waitForExit(timeout: .seconds(60)) == 0, "\(process.stderr)")
        #expect(process.stdout.contains("direct mode"))
        #expect(process.stdout.contains("500 sha256 jobs: 500 ok"))
    }

    @Test func demoRunsUnchangedInReliableMode() async throws {
        let topology = try ReliableTopology(clientsPort: try freePort(), workersPort: try freePort())
        let process = try ChildProcess("demo", ["demo", "--jobs", "500", "-t", topology.path])
        #expect(try await process.waitForExit(timeout: .seconds(60)) == 0, "\(process.stderr)")
        #expect(process.stdout.contains("reliable mode"))
        #expect(process.stdout.contains("add(x: 1, y: 2) = 3"))
        #expect(process.stdout.contains("500 sha256 jobs: 500 ok"))
    }

    @Test func submitPrintsOneResultAndFailsLoudly() async throws {
        let topology = try TestTopology()
        let sink = try await RunningHub.start(topology)
        let worker = try await RunningWorker.start(topology, sink: sink)
        let common = ["-t", topology.path, "--sink", sink.clients]

        let hash = try ChildProcess("sha", ["submit", "sha256", "hello"] + common)
        #expect(try await hash.waitForExit() == 0, "\(hash.stderr)")
        #expect(hash.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")

        let failing = try ChildProcess("fail", ["submit", "fail", "broken on purpose"] + common)
        #expect(try await failing.waitForExit() != 0)
        #expect(failing.stderr.contains("handlerFailed: broken on purpose"), "\(failing.stderr)")

        let unknown = try ChildProcess("nosuch", ["submit", "nosuch"] + common)
        #expect(try await unknown.waitForExit() != 0)
        #expect(unknown.stderr.contains("noWorkers: no live worker has a handler named \"nosuch\""), "\(unknown.stderr)")

        let many = try ChildProcess("many", ["submit", "fail", "--count", "20"] + common)
        #expect(try await many.waitForExit() != 0)
        #expect(many.stdout.contains("jobs: 20  ok: 0  failed: 20"), "\(many.stdout)")
        #expect(many.stdout.contains("p50"))
        #expect(worker.process.isRunning)
    }

    @Test func submitWithoutWorkersReportsIt() async throws {
        let topology = try TestTopology()
        let sink = try await RunningHub.start(topology)
        let process = try ChildProcess("submit", ["submit", "echo", "-t", topology.path, "--sink", sink.clients, "--wait", "300ms"])
        #expect(try await process.waitForExit() != 0)
        #expect(process.stderr.contains("noWorkers"), "\(process.stderr)")
        #expect(sink.process.isRunning)
    }

    @Test func upStartsRestartsAndStopsEveryRole() async throws {
        let topology = try fixedPortTopology(workers: 2)
        let up = try ChildProcess("up", ["up", topology])
        var started: [String: Int32] = [:]
        try await eventually("up starts the sink and two workers (stdout: \(up.stdout) stderr: \(up.stderr))", timeout: .seconds(30)) {
            started = Self.started(up.stdout)
            try #require(started.count == 3 || up.isRunning, "up exited: \(up.stderr)")
            return started.count == 3
        }
        let submit = try ChildProcess("submit", ["submit", "sha256", "--count", "300", "--verify", "--workers", "2", "-t", topology])
        #expect(try await submit.waitForExit(timeout: .seconds(60)) == 0, "\(submit.stdout) \(submit.stderr)")

        // A worker that dies is started again.
        let first = try #require(started["worker-1"])
        kill(first, SIGKILL)
        try await eventually("up restarts worker-1", timeout: .seconds(15)) {
            let again = Self.startedLines(up.stdout).filter { $0.role == "worker-1" }
            return again.count == 2
        }

        up.signal(SIGINT)
        #expect(try await up.waitForExit(timeout: .seconds(20)) == 0, "\(up.stderr)")
        for (_, pid) in Self.startedLines(up.stdout) {
            #expect(kill(pid, 0) != 0, "child \(pid) outlived taskmesh up")
        }
    }

    @Test func examplesAddTwoNumbersAcrossProcesses() async throws {
        let topology = try fixedPortTopology()
        let environment = ["TASKMESH_TOPOLOGY": topology]
        let sink = try ChildProcess("sink", ["sink", "-t", topology])
        _ = try await sink.waitForLine(startingWith: "ready ")
        // A worker without `add` first: the client's jobs must still reach only the add worker.
        let other = try ChildProcess("builtin-worker", ["worker", "-t", topology])
        _ = try await other.waitForLine(startingWith: "ready ")
        let worker = try ChildProcess("add-worker", executable: BuiltProducts.path("example-add-worker"), [], environment: environment)
        _ = try await worker.waitForLine(startingWith: "ready ")
        let client = try ChildProcess("add-client", executable: BuiltProducts.path("example-add-client"), [], environment: environment)
        #expect(try await client.waitForExit() == 0, "\(client.stderr)")
        #expect(client.stdout.contains("1 + 2 = 3"))
        #expect(client.stdout.contains("5 + 50 = 55"))
        #expect(client.stdout.contains("refused: rejected: x and y must be below 2^60"))
        worker.signal(SIGTERM)
        #expect(try await worker.waitForExit(timeout: .seconds(15)) == 0)
        other.signal(SIGTERM)
        #expect(try await other.waitForExit(timeout: .seconds(15)) == 0)
        #expect(sink.isRunning)
    }

    static func startedLines(_ stdout: String) -> [(role: String, pid: Int32)] {
        stdout.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "started", parts[2].hasPrefix("pid="), let pid = Int32(parts[2].dropFirst(4)) else { return nil }
            return (String(parts[1]), pid)
        }
    }

    static func started(_ stdout: String) -> [String: Int32] {
        Dictionary(startedLines(stdout).map { ($0.role, $0.pid) }, uniquingKeysWith: { $1 })
    }
}
