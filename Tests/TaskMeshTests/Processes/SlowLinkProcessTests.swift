import Foundation
import Testing
@testable import TaskMesh

/// A reliable-mode worker whose link to the broker adds 200 ms to every round trip
/// (`scripts/slowlink.py` in the worker's network namespace, for want of netem), running 10 ms
/// jobs on 4 runners. The credit it asks for must cover the round trip, or its runners idle
/// while results travel and new jobs come back: sized for a 2 ms round trip, it held 4 jobs at a
/// time, ran about 19 a second, and most of 1,000 jobs with a 30 s deadline timed out.
@Suite(.enabled(if: NetworkLab.unavailable == nil || ProcessInfo.processInfo.environment["CI"] == "true",
                "network namespaces are not available here: \(NetworkLab.unavailable ?? "")"))
struct SlowLinkProcessTests {
    @Test(.timeLimit(.minutes(3)))
    func aWorkerBehindASlowLinkAsksForEnoughJobsToStayBusy() async throws {
        if let reason = NetworkLab.unavailable { throw ChaosRun.NetworkLabUnavailable(reason: reason) }
        let lab = try NetworkLab(hosts: ["hub", "worker", "client"])
        let hub = lab.address(of: "hub")
        let path = try temporaryTopologyFile("slowlink", """
            insecure: true
            mode: reliable
            broker:
              clients: { bind: "tcp://\(hub):5801" }
              workers: { bind: "tcp://\(hub):5802" }
              lease: 30s
            worker:
              concurrency: 4
            client:
              deadline: 30s
              max_pending: 100000
            heartbeat:
              interval: 500ms
              liveness: 6
            """)
        let broker = try await RunningHub.start(.reliable, topologyPath: path, name: "broker", launcher: lab.launcher(on: "hub"))
        let relayLauncher = lab.launcher(on: "worker")
        let relay = try ChildProcess("slowlink", executable: relayLauncher[0], Array(relayLauncher.dropFirst()) + [
            "python3", RepositoryFiles.root.appendingPathComponent("scripts/slowlink.py").path,
            "--listen", "127.0.0.1:6000", "--to", "\(hub):5802", "--delay-ms", "100",
        ])
        _ = try await relay.waitForLine(startingWith: "ready")
        let workerLauncher = lab.launcher(on: "worker")
        let worker = try ChildProcess("worker", executable: workerLauncher[0], Array(workerLauncher.dropFirst()) + [
            BuiltProducts.taskmesh, "worker", "-t", path, "--broker", "tcp://127.0.0.1:6000", "--handlers", "sleep,echo", "--log-level", "debug",
        ])
        _ = try await worker.waitForLine(startingWith: "ready ")

        let clientLauncher = lab.launcher(on: "client")
        let submit = try ChildProcess("submit", executable: clientLauncher[0], Array(clientLauncher.dropFirst()) + [
            BuiltProducts.taskmesh, "submit", "-t", path, "--broker", broker.clients, "--workers", "1", "--wait", "20s",
            "sleep", "10", "--count", "1000", "--window", "1000", "--json",
        ])
        try await submit.waitForExit(timeout: .seconds(120))
        let summary = try #require(SubmitOutput.json(submit.stdout), "no summary: \(submit.stdout) \(submit.stderr.suffix(1500))")
        let ok = summary["ok"] as? Int ?? -1
        print("slow link: \(ok) of 1000 ok at \(Int(summary["jobsPerSecond"] as? Double ?? 0)) jobs/s (\(summary["errors"] ?? [:]))")
        #expect(ok == 1000, "behind a 200 ms round trip: \(summary)")
        for process in [worker, broker.process, relay] { process.signal(SIGINT) }
        for process in [worker, broker.process] { try await process.waitForExit(timeout: .seconds(20)) }
    }
}
