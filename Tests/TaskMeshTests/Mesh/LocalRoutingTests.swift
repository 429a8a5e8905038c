import Foundation
import Testing
@testable import TaskMesh

@Suite struct LocalRoutingTests {
    @Test func aWorkerThatChangesItsHandlersIsRoutedByTheNewOnesAtOnce() async throws {
        let mesh = try await localMesh()
        var handlers = Handlers()
        try handlers.register("echo") { $0.payload }
        let worker = try await mesh.worker(handlers)
        let client = try await mesh.client()
        try await client.waitForWorkers(1, handling: "echo", timeout: .seconds(10))
        await #expect { try await client.submit("shout", Array("hi".utf8)) } throws: { ($0 as? JobError)?.code == .noWorkers }

        try handlers.register("shout") { job in Array(String(decoding: job.payload, as: UTF8.self).uppercased().utf8) }
        try worker.update(handlers: handlers)
        try await client.waitForWorkers(1, handling: "shout", timeout: .seconds(10))
        #expect(try await client.submit("shout", Array("hi".utf8)) == Array("HI".utf8))

        handlers.remove("echo")
        try worker.update(handlers: handlers)
        // The membership itself says so (not only an `unknownHandler` answer on the way).
        try await eventually("the client hears echo is gone") {
            client.core.workerCapabilities.value == [Capabilities(handlers: ["shout"], labels: [])]
        }
        await #expect { try await client.submit("echo", [1]) } throws: { ($0 as? JobError)?.code == .noWorkers }
        await mesh.shutdown()
    }

    /// A worker drops a handler while many of its jobs are on their way to it: those it had not
    /// read yet come back `unknownHandler` and go to the other worker that has it; none fails.
    ///
    /// The mesh runs in the test process: while the suite's first wave of tests runs beside it,
    /// its runners were seen to finish about 40 of these 2 ms jobs a second (against 2,000
    /// alone), so the jobs are few and their deadline is long.
    @Test func jobsOnTheirWayToAWorkerThatDropsTheirHandlerGoElsewhere() async throws {
        // No read-ahead: each worker holds what it runs and one message more, so jobs sent to
        // the first wait in its socket whatever the pace the client sends them at.
        let mesh = try await localMesh(deadline: .seconds(60), prefetch: 0)
        var slow = Handlers()
        try slow.register("slow") { job in
            try await Task.sleep(for: .milliseconds(2))
            return job.payload
        }
        let dropping = try await mesh.worker(slow, concurrency: 1)
        let keeping = try await mesh.worker(slow, concurrency: 4)
        let client = try await mesh.client()
        try await client.waitForWorkers(2, handling: "slow", timeout: .seconds(10))
        // Past `Wire.batchablePayload`, so each job travels alone: one message each.
        func payload(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(n)) { Array($0) } + [UInt8](repeating: 0, count: Wire.batchablePayload) }
        let jobs = try (0..<600).map { n in try client.enqueue("slow", payload(n)) }
        // Once the first worker holds jobs (its read-ahead), and more wait for it in its socket.
        try await eventually("the first worker took jobs (\(dropping.stats))") { dropping.stats.received > 0 }
        try dropping.update(handlers: Handlers())
        var failures: [String] = []
        for (n, job) in jobs.enumerated() {
            do {
                if try await job.value() != payload(n) { failures.append("\(n): wrong") }
            } catch {
                failures.append("\(n): \(error)")
            }
        }
        let detail = "\(failures.count) failed: \(failures.prefix(3))...\(failures.suffix(2)); client \(client.stats); "
            + "dropping worker \(dropping.stats); the other \(keeping.stats); sink \(String(describing: mesh.sink?.stats))"
        #expect(failures.isEmpty, Comment(rawValue: detail))
        #expect(client.stats.resent > 0, "some jobs came back from the worker that dropped the handler: \(detail)")
        await mesh.shutdown()
    }

    @Test func aLabelledJobRunsOnlyOnALabelledWorker() async throws {
        let mesh = try await localMesh()
        let seen = Shared<[String]>([])
        func handlers(_ name: String) throws -> Handlers {
            var handlers = Handlers()
            try handlers.register("where") { job in
                seen.update { $0.append(name) }
                return Array(name.utf8)
            }
            return handlers
        }
        try await mesh.worker(handlers("plain"))
        try await mesh.worker(handlers("gpu"), labels: ["gpu"])
        let client = try await mesh.client()
        try await client.waitForWorkers(2, timeout: .seconds(10))
        for _ in 0..<50 {
            #expect(try await client.submit("where", [], options: JobOptions(requires: ["gpu"])) == Array("gpu".utf8))
        }
        #expect(seen.value.allSatisfy { $0 == "gpu" })
        await #expect { try await client.submit("where", [], options: JobOptions(requires: ["tpu"])) } throws: { error in
            guard let error = error as? JobError else { return false }
            return error.code == .noWorkers && error.message.contains("\"tpu\"")
        }
        await mesh.shutdown()
    }

    @Test func waitForWorkersHoldsAJobUntilAWorkerWithItsHandlerJoins() async throws {
        var topology = Topology.local
        topology.client.waitForWorkers = true
        topology.heartbeat.interval = .milliseconds(100)
        let mesh = try await Mesh.start(topology: topology)
        var echo = Handlers()
        try echo.register("echo") { $0.payload }
        try await mesh.worker(echo)
        let client = try await mesh.client()
        try await client.waitForWorkers(1, timeout: .seconds(10))
        let job = try client.enqueue("later", Array("x".utf8))
        try await Task.sleep(for: .milliseconds(200))
        #expect(client.stats.pending == 1, "the job waits")
        var later = Handlers()
        try later.register("later") { $0.payload }
        try await mesh.worker(later)
        #expect(try await job.value() == Array("x".utf8))
        // Up to its deadline only, then noWorkers naming the handler.
        await #expect { try await client.submit("never", [], options: JobOptions(deadline: .milliseconds(300))) } throws: { error in
            guard let error = error as? JobError else { return false }
            return error.code == .noWorkers && error.message.contains("\"never\"")
        }
        await mesh.shutdown()
    }

    @Test func higherPriorityJobsLeaveTheClientFirst() async throws {
        let mesh = try await localMesh()
        let client = try await mesh.client()
        // Queued while no worker exists, so the client holds them all and chooses the order.
        var handles: [JobHandle<[UInt8]>] = []
        for (n, priority) in [1, 5, 9, 5, 1, 9].enumerated() {
            handles.append(try client.enqueue("order", [UInt8(n)], options: JobOptions(priority: JobPriority(priority)!)))
        }
        let order = Shared<[UInt8]>([])
        var handlers = Handlers()
        try handlers.register("order") { job in
            order.update { $0.append(job.payload[0]) }
            return job.payload
        }
        try await mesh.worker(handlers, concurrency: 1)
        for handle in handles { _ = try await handle.value() }
        #expect(order.value == [2, 5, 1, 3, 0, 4], "priority 9 first, then 5, then 1, in submission order within each")
        await mesh.shutdown()
    }
}
