import Foundation
import Testing
@testable import TaskMesh

/// A role frozen with SIGSTOP for longer than the ZMTP heartbeat timeout (40 s, past the 30 s
/// floor) while 16 KiB jobs and results stream through it, then resumed. Peers drop its
/// connections while it sleeps and it reconnects when it wakes, with messages still arriving:
/// under a protocol of two-frame messages libzmq aborted the resumed client or reliable worker
/// (`!_more`, src/fq.cpp) in most such runs. Every process must live on, every job of the
/// run must end with exactly one outcome at its client, and a fresh batch must then succeed.
///
/// The scenarios of a mode run one after another (two meshes at a time in all), and every
/// process of theirs runs at the lowest CPU priority (`nice -n 19`): their 16 KiB jobs stream as
/// fast as two cores allow, and at equal priority they starved the tests running beside them
/// (a local mesh's 2 ms jobs ran at 35 a second and timed out).
enum PausedProcessTests {
    enum Paused: String, Sendable, CaseIterable { case client, worker, hub }

    @Suite(.serialized) struct Direct {
        @Test(.timeLimit(.minutes(4)), arguments: Paused.allCases)
        func aRolePausedPastTheHeartbeatTimeoutLeavesEveryProcessAliveAndEveryJobOneOutcome(_ paused: Paused) async throws {
            try await PausedProcessTests.run(.direct, paused: paused)
        }
    }

    @Suite(.serialized) struct Reliable {
        @Test(.timeLimit(.minutes(4)), arguments: Paused.allCases)
        func aRolePausedPastTheHeartbeatTimeoutLeavesEveryProcessAliveAndEveryJobOneOutcome(_ paused: Paused) async throws {
            try await PausedProcessTests.run(.reliable, paused: paused)
        }
    }

    struct Scenario: Sendable {
        let mode: RunningHub.Kind
        let paused: Paused
    }

    /// Longer than `SocketFactory.zmtpTimeoutFloor`, so every peer's ZMTP heartbeat gives up on
    /// the paused process and drops its connections.
    static let pause: Duration = .seconds(40)
    static let jobs = 12_000

    /// What every process of a scenario runs under.
    static let launcher = ["/usr/bin/nice", "-n", "19"]

    static func submit(_ name: String, _ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(name, executable: launcher[0], Array(launcher.dropFirst()) + [BuiltProducts.taskmesh, "submit"] + arguments)
    }

    static func run(_ mode: RunningHub.Kind, paused: Paused) async throws {
        let scenario = Scenario(mode: mode, paused: paused)
        let path = try temporaryTopologyFile("paused", Self.topology(scenario.mode))
        let hub = try await RunningHub.start(scenario.mode, topologyPath: path, launcher: launcher)
        let (worker, _) = try await hub.launchWorker("worker", ["--concurrency", "8"], launcher: launcher)
        let hubFlag = scenario.mode == .direct ? "--sink" : "--broker"
        let payload = String(repeating: "x", count: 16 * 1024)
        let submit = try Self.submit("submit", ["-t", path, hubFlag, hub.clients, "echo", payload, "--count", "\(Self.jobs)",
                                                "--window", "10000", "--deadline", "20s", "--progress"])
        // Freeze the role while results stream: once the client has a thousand.
        try await eventually("results are streaming (\(submit.stderr.suffix(200)))", timeout: .seconds(60)) {
            SubmitOutput.done(submit.stderr) >= 1000 || !submit.isRunning
        }
        #expect(submit.isRunning, "the run ended before the pause: \(submit.stdout)")
        let frozen = switch scenario.paused {
        case .client: submit
        case .worker: worker
        case .hub: hub.process
        }
        frozen.signal(SIGSTOP)
        try await Task.sleep(for: Self.pause)
        frozen.signal(SIGCONT)

        let status = try await submit.waitForExit(timeout: .seconds(150))
        #expect(submit.exited, "submit died of signal \(status): \(submit.stderr.suffix(3000))")
        #expect(hub.process.isRunning, "the \(scenario.mode == .direct ? "sink" : "broker") died: \(hub.process.stderr.suffix(3000))")
        #expect(worker.isRunning, "the worker died: \(worker.stderr.suffix(3000))")
        // One outcome per job: the summary accounts for every one of them.
        let summary = SubmitOutput.counts(submit.stdout.split(separator: "\n").first { $0.hasPrefix("jobs:") }.map(String.init) ?? "")
        let ok = summary["ok"] ?? -1, failed = summary["failed"] ?? -1, timedOut = summary["timed out"] ?? -1
        #expect(summary["jobs"] == Self.jobs && ok + failed + timedOut == Self.jobs, "summary: \(submit.stdout)")
        #expect(ok > 0, "no job succeeded: \(submit.stdout)")

        // Recovery: once the role is back, a fresh batch succeeds whole.
        let again = try Self.submit("again", ["-t", path, hubFlag, hub.clients, "echo", "--count", "2000", "--deadline", "20s"])
        let againStatus = try await again.waitForExit(timeout: .seconds(60))
        #expect(againStatus == 0, "after the pause: \(again.stdout) \(again.stderr.suffix(2000))")
        hub.process.signal(SIGINT)
        worker.signal(SIGINT)
        try await hub.process.waitForExit()
        try await worker.waitForExit()
    }

    /// The topology of one scenario: ephemeral loopback ports, heartbeats every second (so the
    /// ZMTP timeout is its 30 s floor).
    static func topology(_ mode: RunningHub.Kind) -> String {
        let hub = mode == .direct
            ? "mode: direct\nsink:\n  results: { bind: \"tcp://127.0.0.1:0\" }\n  clients: { bind: \"tcp://127.0.0.1:0\" }\nworker:\n  bind: tcp://127.0.0.1:0\n"
            : "mode: reliable\nbroker:\n  clients: { bind: \"tcp://127.0.0.1:0\" }\n  workers: { bind: \"tcp://127.0.0.1:0\" }\n"
        return hub + "client:\n  max_pending: 100000\nheartbeat:\n  interval: 1s\n  liveness: 3\n"
    }
}
