import Foundation
import Testing
import ZMQ
@testable import TaskMesh

/// A reliable-mode topology file on loopback with fast heartbeats.
struct ReliableTopology {
    let path: String

    init(clientsPort: Int = 0, workersPort: Int = 0, maxAttempts: Int = 3, lease: String = "10s",
         interval: String = "200ms", liveness: Int = 3, deadline: String = "30s", concurrency: Int = 2,
         processes: Int = 2, extra: String = "") throws {
        let yaml = """
        mode: reliable
        broker:
          clients: { bind: "tcp://127.0.0.1:\(clientsPort)" }
          workers: { bind: "tcp://127.0.0.1:\(workersPort)" }
          max_attempts: \(maxAttempts)
          lease: \(lease)
        worker:
          concurrency: \(concurrency)
          drain_timeout: 5s
          processes: \(processes)
        client:
          deadline: \(deadline)
        heartbeat:
          interval: \(interval)
          liveness: \(liveness)
        \(extra)
        """
        path = try temporaryTopologyFile("reliable", yaml)
    }
}

@Suite(.serialized) struct ReliableModeProcessTests {
    static let echo: @Sendable ([UInt8]) -> [UInt8] = { $0 }

    @Test func killedWorkerMidJobLosesNothing() async throws {
        let topology = try ReliableTopology(maxAttempts: 3)
        let broker = try await RunningHub.start(topology)
        let logs = [temporaryPath("exec-a"), temporaryPath("exec-b")]
        let victim = try await broker.startWorker(topology, name: "victim", log: logs[0])
        let survivor = try await broker.startWorker(topology, name: "survivor", log: logs[1])
        let (mesh, client) = try await broker.connect(topology)
        try await client.waitForWorkers(2, timeout: .seconds(10))

        // The first eight jobs take a second, so each worker starts four of them (the broker hands
        // jobs to the worker with the most free slots) and the victim is surely still running
        // its four when it is killed, however late this test sees them start; the other jobs
        // are short.
        let payloads = (0..<120).map { n in Array((n < 8 ? "1000" : "30").utf8) }
        async let history = FaultHistory.run(client, handler: "sleep", payloads: payloads, deadline: .seconds(30))
        try await eventually("the victim is running its long jobs") {
            ((try? String(contentsOfFile: logs[0], encoding: .utf8)) ?? "").split(separator: "\n").count >= 4
        }
        victim.signal(SIGKILL)
        let report = try await history.check(executionLogs: logs, expected: Self.echo)

        #expect(report.lost.isEmpty && report.unexpected.isEmpty && report.wrong.isEmpty, "\(report)")
        #expect(report.outcomes["ok"] == 120, "\(report)")
        #expect(report.executions.values.allSatisfy { $0 <= 3 }, "\(report)")
        #expect(report.executions.values.contains { $0 > 1 }, "the victim's running jobs must have run again elsewhere")
        #expect(survivor.isRunning)
        await mesh.shutdown()
    }

    /// A flood through queues of four messages everywhere (the worker's credit shrinks to fit)
    /// ends every job with its own result, each run once.
    ///
    /// Liveness is long here: under the whole suite a process can wait more than the usual
    /// 600 ms for a core, and a worker that takes its broker for silent reconnects, which loses
    /// what its old connection still queued (results that then run again, jobs that wait for
    /// their lease): at-least-once, not the exactly-once this test checks.
    @Test(arguments: [(5_000, 16), (300, 65_536)])
    func aFloodThroughTinyHighWaterMarksEndsEveryJobOnce(jobs: Int, size: Int) async throws {
        let topology = try ReliableTopology(interval: "1s", liveness: 5, deadline: "60s", extra: "limits:\n  send_hwm: 4\n  receive_hwm: 4")
        let broker = try await RunningHub.start(topology)
        let log = temporaryPath("exec-flood")
        let worker = try await broker.startWorker(topology, name: "worker", log: log)
        let (mesh, client) = try await broker.connect(topology)
        try await client.waitForWorkers(1, timeout: .seconds(10))

        let outcomes = try await flood(client, jobs: jobs, size: size)
        #expect(outcomes == ["ok": jobs])
        let executions = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(executions.count == jobs, "each job ran once")
        #expect(worker.isRunning && broker.process.isRunning)
        await mesh.shutdown()
    }

    @Test func frozenWorkerIsReplacedAndItsLateResultDropped() async throws {
        let topology = try ReliableTopology(maxAttempts: 3, interval: "200ms", liveness: 3)
        let broker = try await RunningHub.start(topology)
        let logs = [temporaryPath("exec-a"), temporaryPath("exec-b")]
        let frozen = try await broker.startWorker(topology, name: "frozen", log: logs[0])
        let other = try await broker.startWorker(topology, name: "other", log: logs[1])
        let (mesh, client) = try await broker.connect(topology)
        try await client.waitForWorkers(2, timeout: .seconds(10))

        async let history = FaultHistory.run(client, handler: "sleep", payloads: (0..<40).map { _ in Array("100".utf8) }, deadline: .seconds(30))
        try await eventually("the frozen worker is running jobs") {
            ((try? String(contentsOfFile: logs[0], encoding: .utf8)) ?? "").split(separator: "\n").count >= 2
        }
        frozen.signal(SIGSTOP)
        // Longer than liveness (600 ms): the broker must give its jobs to the other worker.
        try await eventually("the other worker runs the frozen worker's jobs again", timeout: .seconds(10)) {
            FaultHistory(client: client).check(executionLogs: logs, expected: Self.echo).executions.values.contains { $0 > 1 }
        }
        frozen.signal(SIGCONT)
        let report = try await history.check(executionLogs: logs, expected: Self.echo)
        #expect(report.lost.isEmpty && report.wrong.isEmpty, "\(report)")
        #expect(report.outcomes["ok"] == 40, "\(report)")
        #expect(client.stats.droppedLateOrDuplicate == 0, "the broker fences stale results; none reach the client")
        #expect(other.isRunning)
        #expect(broker.process.stderr.contains("workers went silent"), "the broker logs the verdict: \(broker.process.stderr.suffix(1500))")
        await mesh.shutdown()
    }

    @Test func hungHandlerExhaustsItsAttemptsWhileOthersComplete() async throws {
        let topology = try ReliableTopology(maxAttempts: 2, lease: "1s", concurrency: 3)
        let broker = try await RunningHub.start(topology)
        let logs = [temporaryPath("exec-a"), temporaryPath("exec-b")]
        let a = try await broker.startWorker(topology, name: "a", log: logs[0])
        let b = try await broker.startWorker(topology, name: "b", log: logs[1])
        let (mesh, client) = try await broker.connect(topology)
        try await client.waitForWorkers(2, timeout: .seconds(10))

        let hung = try client.enqueue("hang", [], options: JobOptions(deadline: .seconds(20)))
        let others = try await FaultHistory.run(client, handler: "echo", payloads: (0..<100).map { Array("job-\($0)".utf8) }, deadline: .seconds(20))
        let report = others.check(executionLogs: logs, expected: Self.echo)
        #expect(report.outcomes["ok"] == 100, "\(report)")
        do {
            _ = try await hung.value()
            Issue.record("a job that never returns cannot succeed")
        } catch {
            #expect(error.code == .attemptsExhausted, "\(error)")
            #expect(error.message.contains("lease"), "\(error.message)")
        }
        #expect(a.isRunning && b.isRunning)
        #expect(broker.process.stderr.contains("overran their lease"), "the broker logs the overrun: \(broker.process.stderr.suffix(1500))")
        await mesh.shutdown()
    }

    @Test func crashingJobStopsAfterMaxAttemptsAndOthersComplete() async throws {
        let fixed = try ReliableTopology(clientsPort: try freePort(), workersPort: try freePort(), maxAttempts: 2,
                                         interval: "200ms", concurrency: 2, processes: 2)
        let up = try ChildProcess("up", ["up", fixed.path, "--fault-handlers", "--log-level", "info"])
        try await eventually("up starts a broker and two workers (\(up.stderr.suffix(300)))", timeout: .seconds(30)) {
            up.stdout.split(separator: "\n").filter { $0.hasPrefix("started ") }.count >= 3
        }
        let mesh = try await Mesh.start(topology: try Topology.load(path: fixed.path))
        let client = try await mesh.client()
        try await client.waitForWorkers(2, timeout: .seconds(10))

        let poison = try client.enqueue("crash", [], options: JobOptions(deadline: .seconds(30)))
        // Jobs running beside the poison on a worker it kills lose that attempt too; with two
        // attempts some may run out of them. Every one still ends, ok or exhausted.
        let beside = try await FaultHistory.run(client, handler: "echo", payloads: (0..<200).map { Array("job-\($0)".utf8) }, deadline: .seconds(30))
        let besideReport = beside.check(executionLogs: [], expected: Self.echo)
        #expect(besideReport.lost.isEmpty && besideReport.wrong.isEmpty, "\(besideReport)")
        #expect(Set(besideReport.outcomes.keys).isSubset(of: ["ok", "attemptsExhausted"]), "\(besideReport)")
        do {
            _ = try await poison.value()
            Issue.record("a job that kills its worker cannot succeed")
        } catch {
            #expect(error.code == .attemptsExhausted, "\(error)")
            #expect(error.message.contains("gave up after 2 attempts"), "\(error.message)")
        }
        // The crash loop has stopped: with the workers restarted, other jobs keep completing.
        try await client.waitForWorkers(1, timeout: .seconds(15))
        let after = try await FaultHistory.run(client, handler: "echo", payloads: (0..<100).map { Array("after-\($0)".utf8) }, deadline: .seconds(30))
        let afterReport = after.check(executionLogs: [], expected: Self.echo)
        #expect(afterReport.outcomes["ok"] == 100, "\(afterReport)")
        await mesh.shutdown()
        up.signal(SIGINT)
        #expect(try await up.waitForExit(timeout: .seconds(20)) == 0)
    }

    @Test func brokerKilledUnderLoadEveryJobEndsOnce() async throws {
        // Fixed ports from below the ephemeral range: no outgoing connection takes them while
        // the broker is down.
        let first = try ReliableTopology(clientsPort: try freePort(), workersPort: try freePort(), deadline: "20s")
        let broker = try await RunningHub.start(first, name: "broker-1")
        let logs = [temporaryPath("exec-a"), temporaryPath("exec-b")]
        let a = try await broker.startWorker(first, name: "a", log: logs[0])
        let b = try await broker.startWorker(first, name: "b", log: logs[1])
        let (mesh, client) = try await broker.connect(first)
        try await client.waitForWorkers(2, timeout: .seconds(10))

        async let history = FaultHistory.run(client, handler: "sleep", payloads: (0..<300).map { _ in Array("5".utf8) }, deadline: .seconds(20))
        try await eventually("some jobs completed") { client.stats.succeeded >= 50 }
        broker.process.signal(SIGKILL)
        _ = try await broker.process.waitForExit()
        let second = try await RunningHub.start(first, name: "broker-2")
        let report = try await history.check(executionLogs: logs, expected: Self.echo)

        #expect(report.lost.isEmpty && report.unexpected.isEmpty && report.wrong.isEmpty, "\(report)")
        #expect(Set(report.outcomes.keys).isSubset(of: ["ok", "timedOut"]), "\(report)")
        #expect(report.outcomes["ok", default: 0] >= 250, "jobs resent to the restarted broker complete: \(report)")
        #expect(a.isRunning && b.isRunning && second.process.isRunning)
        await mesh.shutdown()
    }

    @Test func sigtermedWorkerLosesNothing() async throws {
        // A generous liveness (3 s): on a loaded machine a slow heartbeat must not pass for a
        // death, which would rightly re-run jobs; this test is about the graceful path.
        let topology = try ReliableTopology(interval: "500ms", liveness: 6)
        let broker = try await RunningHub.start(topology)
        let logs = [temporaryPath("exec-a"), temporaryPath("exec-b")]
        let leaving = try await broker.startWorker(topology, name: "leaving", log: logs[0])
        let staying = try await broker.startWorker(topology, name: "staying", log: logs[1])
        let (mesh, client) = try await broker.connect(topology)
        try await client.waitForWorkers(2, timeout: .seconds(10))

        async let history = FaultHistory.run(client, handler: "sleep", payloads: (0..<200).map { _ in Array("10".utf8) }, deadline: .seconds(30))
        try await eventually("some jobs completed") { client.stats.succeeded >= 30 }
        leaving.signal(SIGTERM)
        let report = try await history.check(executionLogs: logs, expected: Self.echo)
        #expect(report.outcomes["ok"] == 200 && report.lost.isEmpty, "\(report)")
        #expect(report.executions.values.allSatisfy { $0 <= 3 }, "\(report)")
        #expect(try await leaving.waitForExit(timeout: .seconds(15)) == 0)
        #expect(staying.isRunning)
        // The graceful path re-runs nothing. A job runs again only after a verdict of loss, which
        // a loaded machine can earn (a heartbeat or a result late past liveness or lease): the
        // broker or a worker then says so in its log.
        let reruns = report.executions.filter { $0.value > 1 }
        let verdicts = [broker.process, leaving, staying].flatMap { process in
            process.stderr.split(separator: "\n").filter { line in
                ["workers went silent", "overran their lease", "broker silent; reconnecting", "stopped with jobs still running"].contains { line.contains($0) }
            }
        }
        #expect(reruns.isEmpty || !verdicts.isEmpty, "jobs ran again with no worker lost and no lease overrun: \(reruns)")
        if !reruns.isEmpty { print("sigterm: \(reruns.count) jobs ran twice after: \(verdicts.prefix(3))") }
        await mesh.shutdown()
    }

    @Test func duplicateJobIDsRunOnceAndGetOneOutcome() async throws {
        let topology = try ReliableTopology()
        let broker = try await RunningHub.start(topology)
        let log = temporaryPath("exec")
        let worker = try await broker.startWorker(topology, name: "worker", log: log)

        // A raw client, to resubmit the same id as a retrying client would.
        let context = try Context()
        let clientID = Array("raw-client".utf8)
        let dealer = try rawClientDealer(context, id: clientID, connectingTo: broker.clients, receiveTimeout: .milliseconds(200))
        let job = JobMessage(clientID: clientID, jobID: Array("job-1".utf8), handler: "sleep", deadline: 0, attempt: 1, payload: Array("300".utf8))
        try dealer.send(job.encode())
        try dealer.send(job.encode())  // while the first runs

        var results: [ResultMessage] = []
        let clock = ContinuousClock()
        var deadline = clock.now + .seconds(5)
        while clock.now < deadline && results.count < 2 {
            guard let frames = try? await receiveOffPool(dealer), case .result(let result)? = try? FromBroker.decode(frames) else { continue }
            results.append(result)
            deadline = min(deadline, clock.now + .milliseconds(700))  // room for a second, which must not come
        }
        #expect(results.count == 1, "one outcome while the job ran twice-submitted")
        try dealer.send(job.encode())  // after completion: the cached outcome
        var cached: ResultMessage?
        let cacheDeadline = clock.now + .seconds(5)
        while clock.now < cacheDeadline && cached == nil {
            guard let frames = try? await receiveOffPool(dealer), case .result(let result)? = try? FromBroker.decode(frames) else { continue }
            cached = result
        }
        #expect(cached?.status == .ok && cached?.body == Array("300".utf8))
        let executions = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count
        #expect(executions == 1, "the job ran \(executions) times")
        #expect(worker.isRunning)
    }
}
