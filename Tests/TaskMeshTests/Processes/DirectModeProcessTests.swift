import Crypto
import Foundation
import Testing
import ZMQ
@testable import TaskMesh

/// Real `taskmesh` processes over tcp on loopback, started and killed for real.
@Suite(.serialized) struct DirectModeProcessTests {
    @Test func threeClientsTwoWorkersEachGetExactlyTheirOwnResults() async throws {
        let topology = try TestTopology()
        let sink = try await RunningHub.start(topology)
        let workers = try await [
            RunningWorker.start(topology, sink: sink, name: "worker-1"),
            RunningWorker.start(topology, sink: sink, name: "worker-2"),
        ]
        let clients = try (1...3).map { index in
            try ChildProcess("client-\(index)", ["submit", "sha256", "--count", "2000", "--size", "64", "--verify", "--json",
                                                 "--workers", "2", "--window", "200", "-t", topology.path, "--sink", sink.clients])
        }
        for client in clients {
            let status = try await client.waitForExit(timeout: .seconds(120))
            let line = try #require(client.stdout.split(separator: "\n").last, "\(client.name) printed nothing: \(client.stderr)")
            let summary = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(status == 0, "\(client.name): \(line) \(client.stderr.suffix(1000))")
            #expect(summary?["ok"] as? Int == 2000, "\(client.name): \(line)")
            #expect(summary?["wrong"] as? Int == 0)
            #expect(summary?["timedOut"] as? Int == 0)
            #expect(summary?["droppedLateOrDuplicate"] as? Int == 0, "a result arrived twice or for another client")
        }
        for worker in workers { #expect(worker.process.isRunning) }
        #expect(sink.process.isRunning)
    }

    @Test func workerStartedAfterTheClientGetsJobs() async throws {
        let topology = try TestTopology()
        let sink = try await RunningHub.start(topology)
        let (mesh, client) = try await connectClient(topology, sink: sink)
        #expect(client.stats.workers == 0)
        let worker = try await RunningWorker.start(topology, sink: sink)
        try await client.waitForWorkers(1, timeout: .seconds(10))
        for i in 0..<50 {
            let payload = Array("late-worker-\(i)".utf8)
            #expect(try await client.submit("echo", payload) == payload)
        }
        #expect(worker.process.isRunning)
        await mesh.shutdown()
    }

    @Test func killedWorkerTimesOutItsJobsAndLaterJobsSucceed() async throws {
        let topology = try TestTopology(deadline: "2s", interval: "200ms", liveness: 3)
        let sink = try await RunningHub.start(topology)
        let victim = try await RunningWorker.start(topology, sink: sink, name: "victim")
        let survivor = try await RunningWorker.start(topology, sink: sink, name: "survivor")
        let (mesh, client) = try await connectClient(topology, sink: sink)
        try await client.waitForWorkers(2, timeout: .seconds(10))

        // 400 jobs of 20 ms over 2 workers x 4 slots: about a second of work.
        let clock = ContinuousClock()
        let deadline = Duration.seconds(2)
        let handles = try (0..<400).map { _ in try client.enqueue("sleep", Array("20".utf8), options: JobOptions(deadline: deadline)) }
        let lastSubmitted = clock.now
        // Measured on its own thread: when the client loop had ended every job.
        let allEnded = ConditionClock(until: .seconds(60)) { [client] in
            let stats = client.stats
            return stats.succeeded + stats.timedOut + stats.failed >= 400
        }
        try await eventually("a quarter of the jobs finished") { client.stats.succeeded >= 100 }
        victim.process.signal(SIGKILL)

        var ok = 0, timedOut = 0
        for handle in handles {
            do {
                _ = try await handle.value()
                ok += 1
            } catch {
                #expect(error.code == .timedOut, "unexpected outcome \(error)")
                timedOut += 1
            }
        }
        #expect(ok + timedOut == 400)
        #expect(timedOut > 0, "the killed worker held running jobs; they must end as timeouts")
        try await eventually("the watcher saw every job end") { allEnded.instant != nil }
        let ended = try #require(allEnded.instant) - lastSubmitted
        #expect(ended <= deadline + .seconds(1), "timeouts came \(ended) after submission, deadline \(deadline)")

        // Membership drops the dead worker within heartbeat expiry; then every job succeeds.
        try await eventually("the client stops sending to the dead worker", timeout: .seconds(5)) { client.stats.workers == 1 }
        for await outcome in client.batch("echo", (0..<200).map { Array("after-\($0)".utf8) }, window: 50) {
            #expect(try outcome.result.get() == Array("after-\(outcome.index)".utf8))
        }
        #expect(survivor.process.isRunning)
        await mesh.shutdown()
    }

    /// A flood through queues of four messages (every socket's high-water mark, client, sink and
    /// worker alike) ends every job with its own result: back-pressure slows it, nothing is
    /// dropped. Large jobs travel one per message, small ones in batches.
    @Test(arguments: [(20_000, 16), (300, 65_536)])
    func aFloodThroughTinyHighWaterMarksEndsEveryJobWithItsResult(jobs: Int, size: Int) async throws {
        let topology = try TestTopology(deadline: "60s", extra: "limits:\n  send_hwm: 4\n  receive_hwm: 4")
        let sink = try await RunningHub.start(topology)
        let worker = try await RunningWorker.start(topology, sink: sink)
        let (mesh, client) = try await connectClient(topology, sink: sink)
        try await client.waitForWorkers(1, timeout: .seconds(10))

        let outcomes = try await flood(client, jobs: jobs, size: size)
        #expect(outcomes == ["ok": jobs])
        #expect(client.stats.droppedLateOrDuplicate == 0)
        #expect(worker.process.isRunning && sink.process.isRunning)
        await mesh.shutdown()
    }

    /// Fifty clients submit at once through one sink to two workers: each gets exactly its own
    /// results, none lost, none twice, none of another client's.
    @Test func fiftyClientsEachGetExactlyTheirOwnResults() async throws {
        let topology = try TestTopology(deadline: "60s")
        let sink = try await RunningHub.start(topology)
        let workers = [try await RunningWorker.start(topology, sink: sink, name: "worker-a"),
                       try await RunningWorker.start(topology, sink: sink, name: "worker-b")]
        let (mesh, _) = try await connectClient(topology, sink: sink)
        var clients: [Client] = []
        for _ in 0..<50 { clients.append(try await mesh.client()) }
        for client in clients { try await client.waitForWorkers(2, timeout: .seconds(10)) }

        let perClient = 400
        let tallies = try await withThrowingTaskGroup(of: (Int, [String: Int], UInt64).self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    // Each payload names its client and job, so a result routed to the wrong
                    // client would not match.
                    let payloads = (0..<perClient).map { [UInt8(index), UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] }
                    let tally = try await echoTally(client, payloads)
                    return (index, tally, client.stats.droppedLateOrDuplicate)
                }
            }
            var all: [(Int, [String: Int], UInt64)] = []
            for try await tally in group { all.append(tally) }
            return all
        }
        #expect(tallies.count == 50)
        for (index, tally, dropped) in tallies {
            #expect(tally == ["ok": perClient], "client \(index)")
            #expect(dropped == 0, "client \(index)")
        }
        #expect(workers.allSatisfy { $0.process.isRunning } && sink.process.isRunning)
        await mesh.shutdown()
    }

    @Test func sinkKilledAndRestartedServesNewJobs() async throws {
        // Fixed ports from below the ephemeral range: no outgoing connection takes them while
        // the sink is down.
        let topology = try TestTopology(resultsPort: try freePort(), clientsPort: try freePort(), deadline: "2s")
        let first = try await RunningHub.start(topology, name: "sink-1")
        let worker = try await RunningWorker.start(topology, sink: first)
        let (mesh, client) = try await connectClient(topology, sink: first)
        try await client.waitForWorkers(1, timeout: .seconds(10))
        #expect(try await client.submit("echo", [1]) == [1])

        first.process.signal(SIGKILL)
        try await first.process.waitForExit()
        let second = try await RunningHub.start(topology, name: "sink-2")
        #expect(second.results == first.results && second.clients == first.clients)

        // Reconnection takes a moment; the first job that gets through proves it.
        try await eventually("a job succeeds through the restarted sink", timeout: .seconds(20)) {
            (try? await client.submit("echo", [2], options: JobOptions(deadline: .milliseconds(500)))) == [2]
        }
        for await outcome in client.batch("echo", (0..<100).map { [UInt8($0)] }, window: 20) {
            #expect(try outcome.result.get() == [UInt8(outcome.index)])
        }
        #expect(worker.process.isRunning && second.process.isRunning)
        await mesh.shutdown()
    }

    @Test func malformedFramesLeaveSinkAndWorkerServing() async throws {
        let topology = try TestTopology()
        let sink = try await RunningHub.start(topology)
        let worker = try await RunningWorker.start(topology, sink: sink)
        let garbage: [[[UInt8]]] = [
            [[]],
            [[0xFF, 0xFF, 0xFF]],
            [[0x54, 0x4D, 0x09, 0x01, 0, 0, 0, 8]],                      // unknown version
            [[0x54, 0x4D, 0x02, 0x7F, 0, 0, 0, 8]],                      // unknown command
            [[0x54, 0x4D, 0x02, 0x01, 0, 0, 0, 10, 0, 0]],               // truncated JOB header
            [[0x54, 0x4D, 0x02, 0x02, 0, 0, 0, 0xFF, 0, 0, 1, 1, 65]],   // RESULT whose header runs past its end
            [[0x54, 0x4D, 0x02, 0x03, 0, 0, 0, 11, 0, 1, 0]],            // ANNOUNCE with an empty worker id
            // A valid JOB with a frame after it, and a JOB of version 1 (header and payload frames).
            [JobMessage(clientID: [1], jobID: [2], handler: "echo", deadline: 0, attempt: 1, payload: []).encode(), [1]],
            [[0x54, 0x4D, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 4, 0x65, 0x63, 0x68, 0x6F], [0x68, 0x69]],
            // Deadlines at the very end of time: valid, and no arithmetic on them may trap.
            [JobMessage(clientID: [1], jobID: [3], handler: "echo", deadline: .max, attempt: 1, payload: []).encode()],
            {
                var batch = JobBatchWriter(clientID: [1])
                batch.append(jobID: [4], handler: "echo", deadline: .max - 1, attempt: 1, payload: [])
                batch.append(jobID: [5], handler: "echo", deadline: .max, attempt: 1, payload: [])
                return [batch.encode()]
            }(),
            Array(repeating: [1, 2, 3], count: 100),
            [(0..<300).map { UInt8($0 & 0xFF) }],
        ]
        let context = try Context()
        let toSinkResults = try Socket(context, .push)
        let toSinkClients = try Socket(context, .dealer)
        let toWorker = try Socket(context, .push)
        try toSinkResults.connect(sink.results)
        try toSinkClients.connect(sink.clients)
        try toWorker.connect(worker.endpoint)
        for socket in [toSinkResults, toSinkClients, toWorker] {
            try socket.set(.sendTimeout, .seconds(5))
            for frames in garbage { try socket.send(multipart: frames) }
            try socket.send([UInt8](repeating: 7, count: 64 * 1024 * 1024))  // over MAXMSGSIZE: disconnects this peer
        }
        // A JOB whose handler name is not UTF-8 gets a badRequest result routed to its client.
        let (mesh, client) = try await connectClient(topology, sink: sink)
        try await client.waitForWorkers(1, timeout: .seconds(10))
        for i in 0..<100 {
            #expect(try await client.submit("echo", [UInt8(i)]) == [UInt8(i)])
        }
        #expect(sink.process.isRunning && worker.process.isRunning)
        await mesh.shutdown()
    }

    /// A worker answers every entry of a JOBS on its own: intact jobs run, an unknown handler and
    /// a damaged entry whose id can be read get their error, and the worker keeps serving.
    @Test func aJobBatchIsAnsweredEntryByEntry() async throws {
        let topology = try TestTopology()
        let sink = try await RunningHub.start(topology)
        let worker = try await RunningWorker.start(topology, sink: sink)
        let context = try Context()
        let clientID = Array("raw-client".utf8)
        let results = try rawClientDealer(context, id: clientID, connectingTo: sink.clients, receiveTimeout: .seconds(10))
        try results.send(HelloMessage().encode())
        let members = try? await receiveOffPool(results)
        _ = try #require(members, "no MEMBERS within 10 s of HELLO")
        let jobs = try Socket(context, .push)
        try jobs.connect(worker.endpoint)
        try jobs.set(.sendTimeout, .seconds(5))

        var batch = JobBatchWriter(clientID: clientID)
        for n: UInt8 in 1...40 { batch.append(jobID: [n], handler: "echo", deadline: 0, attempt: 1, payload: [n, n]) }
        batch.append(jobID: [41], handler: "no-such-handler", deadline: 0, attempt: 1, payload: [])
        batch.append(jobID: [42], handler: "echo", deadline: 0, attempt: 2, payload: [42])
        batch.append(jobID: [43], handler: "echo", deadline: 0, attempt: 1, payload: [43])
        var message = batch.encode()
        // Entry 42's payload length now runs past the body: it is damaged, and 43 behind it is lost.
        let entry42 = message.count - 2 * JobBatchWriter.entrySize(jobID: [42], handler: "echo", payload: [42])
        message[entry42 + 8 + 2 + 2 + 5] = 0x7F
        try jobs.send(message)

        var outcomes: [UInt8: ResultMessage] = [:]
        while outcomes.count < 42 {
            let received = try await receiveOffPool(results)
            switch try SinkToClient.decode(received) {
            case .result(let result): outcomes[result.jobID[0]] = result
            case .results(let results): try results.forEach { outcomes[$0.jobID[0]] = $0 }
            case .members, .progress: break
            }
        }
        for n: UInt8 in 1...40 {
            #expect(outcomes[n]?.status == .ok && outcomes[n]?.body == [n, n], "job \(n): \(String(describing: outcomes[n]))")
        }
        #expect(outcomes[41]?.status == .unknownHandler)
        #expect(outcomes[42]?.status == .badRequest && outcomes[42]?.attempt == 2, "the answer carries the entry's attempt")
        #expect(outcomes[43] == nil)

        // The worker still serves a client.
        let (mesh, client) = try await connectClient(topology, sink: sink)
        try await client.waitForWorkers(1, timeout: .seconds(10))
        #expect(try await client.submit("echo", [9]) == [9])
        #expect(worker.process.isRunning)
        await mesh.shutdown()
    }

    /// Direct mode promises that a stopping worker finishes or hands back every job that reaches
    /// it, and exits within its drain timeout: under load, with jobs still queued for it at the
    /// client and in its socket, every job succeeds (here or on the other worker).
    @Test func sigtermStopsAWorkerGracefully() async throws {
        let topology = try TestTopology(deadline: "10s", interval: "200ms")
        let sink = try await RunningHub.start(topology)
        let leaving = try await RunningWorker.start(topology, sink: sink, name: "leaving")
        let staying = try await RunningWorker.start(topology, sink: sink, name: "staying")
        let (mesh, client) = try await connectClient(topology, sink: sink)
        try await client.waitForWorkers(2, timeout: .seconds(10))
        let handles = try (0..<300).map { _ in try client.enqueue("sleep", Array("10".utf8)) }
        try await eventually("some jobs finished") { client.stats.succeeded >= 50 }
        leaving.process.signal(SIGTERM)
        var ok = 0, timedOut = 0
        for handle in handles {
            do {
                #expect(try await handle.value() == Array("10".utf8))
                ok += 1
            } catch {
                #expect(error.code == .timedOut, "\(error)")
                timedOut += 1
            }
        }
        #expect(ok + timedOut == 300)
        #expect(timedOut == 0, "\(client.stats)")
        #expect(try await leaving.process.waitForExit(timeout: .seconds(10)) == 0)
        #expect(leaving.process.stderr.contains("worker stopping"))
        #expect(staying.process.isRunning)
        // After the stop, every job succeeds on the remaining worker.
        for await outcome in client.batch("echo", (0..<100).map { [UInt8($0)] }, window: 20) {
            #expect(try outcome.result.get() == [UInt8(outcome.index)])
        }
        await mesh.shutdown()
    }

}
