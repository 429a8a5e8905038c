import Crypto
import Foundation
import Testing
@testable import TaskMesh

extension RunningHub {
    /// A sink (direct) or broker (reliable) process for the routing and lifecycle tests, on a
    /// topology with fast heartbeats; `client`, `broker` and `worker` add settings to those
    /// sections (`broker` as lines); `liveness` is how many 200 ms heartbeat intervals a silent
    /// peer is given.
    static func start(_ kind: Kind, deadline: String = "20s", client: String = "", broker: String = "",
                      worker: String = "", liveness: Int = 3) async throws -> RunningHub {
        let yaml: String
        switch kind {
        case .direct:
            yaml = """
            mode: direct
            sink:
              results: { bind: "tcp://127.0.0.1:0" }
              clients: { bind: "tcp://127.0.0.1:0" }
            worker: { bind: "tcp://127.0.0.1:0", concurrency: 4, drain_timeout: 3s\(worker.isEmpty ? "" : ", " + worker) }
            client: { deadline: \(deadline)\(client.isEmpty ? "" : ", " + client) }
            heartbeat: { interval: 200ms, liveness: \(liveness) }
            """
        case .reliable:
            yaml = """
            mode: reliable
            broker:
              clients: { bind: "tcp://127.0.0.1:0" }
              workers: { bind: "tcp://127.0.0.1:0" }
              lease: 10s\(broker.isEmpty ? "" : "\n  " + broker)
            worker: { concurrency: 4, drain_timeout: 3s\(worker.isEmpty ? "" : ", " + worker) }
            client: { deadline: \(deadline)\(client.isEmpty ? "" : ", " + client) }
            heartbeat: { interval: 200ms, liveness: \(liveness) }
            """
        }
        return try await start(kind, topologyPath: try temporaryTopologyFile("routing", yaml))
    }
}

/// The job ids an execution log recorded, as text (the tests name jobs with text ids).
func executedJobIDs(_ log: String) -> [String] {
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { line in
        let parts = line.split(separator: " ")
        guard parts.count >= 3 else { return nil }
        var bytes: [UInt8] = []
        var hex = Substring(parts[1])
        while hex.count >= 2 {
            guard let byte = UInt8(hex.prefix(2), radix: 16) else { return nil }
            bytes.append(byte)
            hex = hex.dropFirst(2)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// When each job an execution log recorded started, by its text id (its last start).
func executionStarts(_ log: String) -> [String: Date] {
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    var starts: [String: Date] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ")
        guard parts.count == 4, let ms = Double(parts[3]) else { continue }
        var bytes: [UInt8] = []
        var hex = Substring(parts[1])
        while hex.count >= 2, let byte = UInt8(hex.prefix(2), radix: 16) {
            bytes.append(byte)
            hex = hex.dropFirst(2)
        }
        starts[String(decoding: bytes, as: UTF8.self)] = Date(timeIntervalSince1970: ms / 1000)
    }
    return starts
}

private func sha256Hex(_ bytes: [UInt8]) -> [UInt8] {
    Array(SHA256.hash(data: bytes).map { String($0, radix: 16).leftPadded(to: 2) }.joined().utf8)
}

/// Routing by capability with real worker processes, in direct and in reliable mode.
@Suite(.serialized) struct RoutingProcessTests {
    /// Worker A runs sha256 only, B echo only, C both; two clients send 3,000 mixed jobs. Every
    /// job succeeds, each ran only on a worker that has its handler, and A and C share the
    /// sha256 jobs.
    @Test(arguments: RunningHub.Kind.allCases)
    func aMeshOfSpecialisedWorkersRunsEveryJobOnlyWhereItsHandlerIs(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let logs = ["a", "b", "c"].map { temporaryPath("routing-\($0)") }
        let a = try await mesh.startWorker("worker-a", handlers: ["sha256"], log: logs[0])
        let b = try await mesh.startWorker("worker-b", handlers: ["echo"], log: logs[1])
        let c = try await mesh.startWorker("worker-c", handlers: ["sha256", "echo"], log: logs[2])
        let (meshOne, first) = try await mesh.connect()
        let (meshTwo, second) = try await mesh.connect()
        for client in [first, second] { try await mesh.waitForWorkers(client, count: 3, handlers: ["sha256", "echo"]) }

        try await withThrowingTaskGroup(of: (ok: Int, failures: [String]).self) { group in
            for (index, client) in [first, second].enumerated() {
                group.addTask {
                    var handles: [(JobHandle<[UInt8]>, [UInt8])] = []
                    for n in 0..<1500 {
                        let sha = n.isMultiple(of: 2)
                        let payload = Array("\(index)-\(n)".utf8)
                        let id = JobID("\(sha ? "s" : "e")\(index)-\(n)")
                        handles.append((try client.enqueue(sha ? "sha256" : "echo", payload, options: JobOptions(id: id)),
                                        sha ? sha256Hex(payload) : payload))
                    }
                    var ok = 0
                    var failures: [String] = []
                    for (handle, expected) in handles {
                        do {
                            if try await handle.value() == expected { ok += 1 } else { failures.append("\(handle.id): wrong result") }
                        } catch {
                            failures.append("\(handle.id): \(error)")
                        }
                    }
                    return (ok, failures)
                }
            }
            for try await tally in group {
                #expect(tally.ok == 1500, "\(kind): \(tally.failures.prefix(5))")
            }
        }
        let ran = logs.map(executedJobIDs)
        #expect(ran[0].allSatisfy { $0.hasPrefix("s") }, "worker A (sha256 only) ran an echo job")
        #expect(ran[1].allSatisfy { $0.hasPrefix("e") }, "worker B (echo only) ran a sha256 job")
        let shaOnA = ran[0].count, shaOnC = ran[2].filter { $0.hasPrefix("s") }.count
        #expect(shaOnA > 0 && shaOnC > 0, "A and C share the sha256 jobs: A ran \(shaOnA), C ran \(shaOnC)")
        #expect(Set(ran.joined()).count == 3000, "every job ran (once per id seen)")
        // A duplicate outcome only ever answers a resend (a client that took its broker or a
        // worker for gone under load sends again).
        for client in [first, second] {
            #expect(client.stats.droppedLateOrDuplicate <= client.stats.resent, "\(kind): \(client.stats)")
        }
        for process in [a, b, c] { #expect(process.isRunning) }
        await meshOne.shutdown()
        await meshTwo.shutdown()
    }

    /// Jobs requiring `gpu` run only on the worker labelled `gpu`; with it gone, such a job ends
    /// `noWorkers` naming the missing label.
    @Test(arguments: RunningHub.Kind.allCases)
    func jobsRequiringALabelRunOnlyOnWorkersCarryingIt(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind, broker: "unroutable_timeout: 1s")
        let logs = [temporaryPath("gpu"), temporaryPath("plain")]
        let gpu = try await mesh.startWorker("gpu", handlers: ["echo"], labels: ["gpu"], log: logs[0])
        let plain = try await mesh.startWorker("plain", handlers: ["echo"], log: logs[1])
        let (handle, client) = try await mesh.connect()
        try await mesh.waitForWorkers(client, count: 2, handlers: ["echo"])

        let wantsGPU = JobOptions(requires: ["gpu"])
        for n in 0..<100 {
            let payload = Array("g\(n)".utf8)
            #expect(try await client.submit("echo", payload, options: JobOptions(id: JobID("g\(n)"), requires: ["gpu"])) == payload)
        }
        #expect(executedJobIDs(logs[0]).count == 100)
        #expect(executedJobIDs(logs[1]).isEmpty, "a job requiring gpu ran on a worker without the label")

        gpu.signal(SIGTERM)
        #expect(try await gpu.waitForExit(timeout: .seconds(20)) == 0)
        try await eventually("the client no longer sees the gpu worker") { client.stats.workers == 1 }
        let clock = ContinuousClock()
        let started = clock.now
        await #expect { try await client.submit("echo", [1], options: wantsGPU) } throws: { error in
            guard let error = error as? JobError else { return false }
            return error.code == .noWorkers && error.message.contains("gpu")
        }
        let waited = clock.now - started
        #expect(waited < .seconds(kind == .direct ? 1 : 5), "\(kind): ended after \(waited)")
        #expect(plain.isRunning)
        await handle.shutdown()
    }

    /// A job for a handler no worker has: direct mode ends it at once with a message naming it;
    /// reliable mode holds it and runs it as soon as a worker with that handler joins.
    @Test(arguments: RunningHub.Kind.allCases)
    func aJobForAHandlerNobodyHas(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let echo = try await mesh.startWorker("echo-only", handlers: ["echo"], log: temporaryPath("echo-only"))
        let (handle, client) = try await mesh.connect()
        try await mesh.waitForWorkers(client, count: 1, handlers: ["echo"])
        let clock = ContinuousClock()
        switch kind {
        case .direct:
            let started = clock.now
            await #expect { try await client.submit("sha256", [1]) } throws: { error in
                guard let error = error as? JobError else { return false }
                return error.code == .noWorkers && error.message.contains("\"sha256\"") && error.message.contains("echo")
            }
            #expect(clock.now - started < .seconds(1))
        case .reliable:
            let payload = Array("late".utf8)
            let job = try client.enqueue("sha256", payload)
            try await Task.sleep(for: .milliseconds(500))
            #expect(client.stats.pending == 1, "the job waits at the broker")
            let log = temporaryPath("sha-late")
            let joined = clock.now
            let sha = try await mesh.startWorker("sha-late", handlers: ["sha256"], log: log)
            #expect(try await job.value() == sha256Hex(payload))
            #expect(clock.now - joined < .seconds(10))
            #expect(executedJobIDs(log).count == 1)
            #expect(sha.isRunning)
        }
        #expect(echo.isRunning)
        await handle.shutdown()
    }

    /// A rolling upgrade: a version 1 worker runs sleep; a version 2 worker that also runs sha256
    /// joins, then the version 1 worker is stopped with SIGTERM while jobs of both handlers flow.
    /// No job fails and none is lost.
    @Test(arguments: RunningHub.Kind.allCases)
    func aRollingUpgradeLosesNoJob(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind, client: "wait_for_workers: true")
        let old = try await mesh.startWorker("v1", handlers: ["sleep"], log: temporaryPath("v1"))
        let (handle, client) = try await mesh.connect()
        try await mesh.waitForWorkers(client, count: 1, handlers: ["sleep"])

        async let outcomes: [String] = {
            var failures: [String] = []
            var handles: [(JobHandle<[UInt8]>, [UInt8])] = []
            for n in 0..<600 {
                let sha = n >= 200 && n.isMultiple(of: 2)  // sha256 once version 2 may be up
                let payload = Array("\(n)".utf8)
                handles.append((try client.enqueue(sha ? "sha256" : "sleep", sha ? payload : Array("5".utf8)), sha ? sha256Hex(payload) : Array("5".utf8)))
                if n == 200 { try await Task.sleep(for: .milliseconds(200)) }
                try await Task.sleep(for: .milliseconds(2))
            }
            for (job, expected) in handles {
                do {
                    if try await job.value() != expected { failures.append("\(job.id): wrong result") }
                } catch {
                    failures.append("\(job.id): \(error)")
                }
            }
            return failures
        }()
        let new = try await mesh.startWorker("v2", handlers: ["sleep", "sha256"], log: temporaryPath("v2"))
        try await Task.sleep(for: .milliseconds(300))
        old.signal(SIGTERM)
        #expect(try await old.waitForExit(timeout: .seconds(20)) == 0)
        let failures = try await outcomes
        #expect(failures.isEmpty, "\(kind): \(failures.count) failed: \(failures.prefix(5))")
        #expect(new.isRunning)
        await handle.shutdown()
    }

    /// The broker dispatches higher priority first and first come first served within one:
    /// jobs queued while no worker is ready start, on a worker of one slot, in that order.
    @Test func theBrokerRunsHigherPriorityFirst() async throws {
        let mesh = try await RunningHub.start(.reliable, worker: "prefetch: 0")
        let (lowHandle, low) = try await mesh.connect()
        let (highHandle, high) = try await mesh.connect()
        // The low ones reach the broker first, from another client, so only the broker can
        // put the high ones ahead of them.
        var jobs: [JobHandle<[UInt8]>] = []
        for (n, priority) in [1, 5, 1, 5].enumerated() {
            jobs.append(try low.enqueue("echo", [UInt8(n)], options: JobOptions(id: JobID("p\(priority)-\(n)"), priority: JobPriority(priority)!)))
        }
        try await Task.sleep(for: .milliseconds(300))
        for (n, priority) in [(4, 9), (5, 5), (6, 9), (7, 9)] {
            jobs.append(try high.enqueue("echo", [UInt8(n)], options: JobOptions(id: JobID("p\(priority)-\(n)"), priority: JobPriority(priority)!)))
        }
        try await Task.sleep(for: .milliseconds(300))  // all queued at the broker
        let log = temporaryPath("priorities")
        let worker = try await mesh.startWorker("one-slot", handlers: ["echo"], concurrency: 1, log: log)
        for job in jobs { _ = try await job.value() }
        // Priority 9 first, then 5 with the two clients taking turns, then 1.
        #expect(executedJobIDs(log) == ["p9-4", "p9-6", "p9-7", "p5-1", "p5-5", "p5-3", "p1-0", "p1-2"])
        #expect(worker.isRunning)
        await lowHandle.shutdown()
        await highHandle.shutdown()
    }

    /// Fairness between clients: while client A floods the broker, client B's jobs, submitted
    /// one at a time, take turns with A's instead of waiting behind all of them. B's round
    /// trips with and without the flood are printed (docs/BENCHMARKS.md quotes a run with
    /// TASKMESH_FAIRNESS_FLOOD=100000).
    ///
    /// The broker's turn-taking is what is tested, so the worker's prefetch is fixed: each of
    /// B's jobs also waits behind the jobs the worker already holds, which its own credit sizes
    /// to a broker wake-up's worth of work (20 ms at the worker's pace), and this debug build's
    /// broker, sharing two cores with every process here, takes several times that to pass them
    /// through. The credit's own bound is `WorkerCreditTests`'. Peers get 2 s of silence: a
    /// debug broker under this flood, beside the rest of the suite, can fall that far behind.
    @Test func oneClientsFloodDoesNotStarveAnother() async throws {
        let floodSize = ProcessInfo.processInfo.environment["TASKMESH_FAIRNESS_FLOOD"].flatMap(Int.init) ?? 60_000
        let mesh = try await RunningHub.start(.reliable, deadline: "120s", client: "max_pending: 200000",
                                               broker: "queue_limit: 400000", worker: "prefetch: 256", liveness: 10)
        let worker = try await mesh.startWorker("worker", handlers: ["echo"], log: "/dev/null")
        let (meshA, a) = try await mesh.connect()
        let (meshB, b) = try await mesh.connect()
        try await a.waitForWorkers(1, timeout: .seconds(10))
        let clock = ContinuousClock()
        func roundTrips(_ count: Int) async throws -> [Duration] {
            var times: [Duration] = []
            for n in 0..<count {
                let started = clock.now
                #expect(try await b.submit("echo", [UInt8(n % 256)]) == [UInt8(n % 256)])
                times.append(clock.now - started)
            }
            return times.sorted()
        }
        let quiet = try await roundTrips(200)

        let flood = try (0..<floodSize).map { n in try a.enqueue("echo", [UInt8(n % 256)]) }
        let floodStarted = clock.now
        async let floodEnded: ContinuousClock.Instant = {
            for job in flood { _ = try await job.value() }
            return clock.now
        }()
        var loaded: [Duration] = []
        var endedDuringFlood = 0
        for n in 0..<200 {
            let started = clock.now
            #expect(try await b.submit("echo", [UInt8(n)]) == [UInt8(n)])
            loaded.append(clock.now - started)
            if a.stats.pending > 0 { endedDuringFlood += 1 }
        }
        let floodEnd = try await floodEnded
        loaded.sort()
        func p(_ times: [Duration], _ q: Double) -> String { "\(times[min(times.count - 1, Int(Double(times.count) * q))])" }
        print("fairness: flood of \(floodSize) jobs took \(floodEnd - floodStarted); B's round trip quiet p50 \(p(quiet, 0.5)) p99 \(p(quiet, 0.99)); under the flood p50 \(p(loaded, 0.5)) p99 \(p(loaded, 0.99)); \(endedDuringFlood) of 200 ended while A still had jobs pending")
        // Taking turns, B's first jobs end long before A's flood does: without it, B's first
        // job would wait behind every one of A's.
        #expect(endedDuringFlood >= 20, "only \(endedDuringFlood) of B's jobs ended during A's flood of \(floodEnd - floodStarted)")
        #expect(worker.isRunning, "\(worker.stderr.suffix(2000))")
        await meshA.shutdown()
        await meshB.shutdown()
    }
}
