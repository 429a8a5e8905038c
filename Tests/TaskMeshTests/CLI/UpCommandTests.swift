import Foundation
import Testing
import ZMQ
@testable import TaskMesh

/// `taskmesh up` under faults: a hub that cannot start, restarts that space out and settle
/// again, and a supervisor killed outright.
@Suite struct UpCommandTests {
    /// The sink's client port is taken: up reports it and exits 1 instead of restarting the sink
    /// for ever, and starts no worker.
    @Test func aHubThatCannotStartStopsUpWithoutStartingWorkers() async throws {
        let topology = try fixedPortTopology(workers: 2)
        let clients = try Topology.load(path: topology).hub.clientsEndpoint
        let context = try Context()
        let squatter = try Socket(context, .router)
        _ = try squatter.bind(clients)
        defer { squatter.close() }

        let up = try ChildProcess("up", ["up", topology])
        #expect(try await up.waitForExit(timeout: .seconds(40)) == 1, "\(up.stderr.suffix(2000))")
        #expect(up.stderr.contains("taskmesh up: sink exited with status") && up.stderr.contains("before it was ready"), "\(up.stderr.suffix(2000))")
        #expect(!up.stdout.contains("started worker"), "\(up.stdout)")
    }

    /// A role that keeps dying waits 1 s, then 2 s; once it has run for --healthy-after, its next
    /// restart waits 1 s again. The quick deaths are kills as soon as the start shows: --healthy-
    /// after is 8 s so that a loaded machine, slow to notice the start (seen: 3 s), still kills
    /// them well before.
    @Test func restartsSpaceOutWhileARoleKeepsDyingAndSettleOnceItRuns() async throws {
        let topology = try fixedPortTopology(workers: 1)
        let up = try ChildProcess("up", ["up", topology, "--healthy-after", "8s"])
        try await eventually("up starts the sink and a worker (\(up.stderr.suffix(500)))", timeout: .seconds(30)) {
            up.stdout.split(separator: "\n").filter { $0.hasPrefix("ready ") }.count == 2
        }
        func killLatestWorker(expectingStart count: Int) async throws {
            var pid: Int32?
            try await eventually("worker-1 started \(count) times (\(up.stderr.suffix(500)))", timeout: .seconds(30)) {
                let starts = CommandLineTests.startedLines(up.stdout).filter { $0.role == "worker-1" }
                pid = starts.count == count ? starts.last?.pid : nil
                return pid != nil
            }
            kill(try #require(pid), SIGKILL)
        }
        func delays() -> [String] {
            up.stderr.split(separator: "\n").filter { $0.contains("taskmesh up: worker-1 was killed") }.compactMap { $0.split(separator: " ").last.map(String.init) }
        }
        try await killLatestWorker(expectingStart: 1)
        try await killLatestWorker(expectingStart: 2)  // at once: a quick exit
        try await eventually("two restarts announced (\(up.stderr.suffix(500)))") { delays().count == 2 }
        #expect(delays() == ["1s", "2s"], "\(up.stderr.suffix(1000))")
        // The third run lasts past --healthy-after.
        try await eventually("worker-1 started 3 times", timeout: .seconds(30)) {
            CommandLineTests.startedLines(up.stdout).filter { $0.role == "worker-1" }.count == 3
        }
        try await Task.sleep(for: .seconds(9))
        try await killLatestWorker(expectingStart: 3)
        try await eventually("the third restart announced (\(up.stderr.suffix(500)))") { delays().count == 3 }
        #expect(delays() == ["1s", "2s", "1s"], "\(up.stderr.suffix(1000))")

        up.signal(SIGINT)
        #expect(try await up.waitForExit(timeout: .seconds(20)) == 0, "\(up.stderr.suffix(1000))")
    }

    /// up is killed with SIGKILL: its sink and workers notice and stop on their own.
    @Test func aKilledUpLeavesNoChildRunning() async throws {
        let topology = try fixedPortTopology(workers: 2)
        let up = try ChildProcess("up", ["up", topology])
        try await eventually("up starts the sink and two workers (\(up.stderr.suffix(500)))", timeout: .seconds(30)) {
            up.stdout.split(separator: "\n").filter { $0.hasPrefix("ready ") }.count == 3
        }
        let children = CommandLineTests.startedLines(up.stdout).map(\.pid)
        #expect(children.count == 3)
        up.signal(SIGKILL)
        _ = try await up.waitForExit(timeout: .seconds(10))
        try await eventually("every child of the killed up has exited", timeout: .seconds(20)) {
            children.allSatisfy(Self.hasExited)
        }
    }

    /// Whether `pid` is gone or a zombie (exited; its new parent may not reap it at once).
    static func hasExited(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)...].first == "Z"
    }
}
