import Foundation
import Testing
@testable import TaskMesh

// The parts of routing by capability that need no socket: the capability and option codecs
// (Protocol/Capabilities.swift), the client's priority outbox and parking (Client/Outbox.swift,
// PendingJobs), the words of a noWorkers outcome (Client/RouteMessage.swift), the sink's
// full-or-unchanged member lists (Sink/MemberListener.swift), labels (LabelRules.swift) and the
// topology fields that go with them.

private func job(_ n: Int, priority: UInt8 = 5, handler: String = "echo", deadline: Instant = .current + .seconds(60)) -> Submission {
    Submission(jobID: [UInt8(n)], handler: handler, payload: [], deadline: deadline, wallDeadline: 0, promise: Promise(),
               options: DispatchOptions(priority: priority, requires: []))
}

private extension PendingJobs {
    mutating func sendAllIDs() -> [Int] {
        var sent: [Int] = []
        while let next = nextToSend(), sent.count <= count {
            markSent()
            sent.append(Int(next.jobID[0]))
        }
        return sent
    }
}

@Suite struct CapabilitiesCodecTests {
    private func decode(_ bytes: [UInt8]) throws(ProtocolViolation) -> Capabilities {
        var r = ByteReader(bytes)
        return try Capabilities.decode(&r)
    }

    @Test func roundTripsInCanonicalOrder() throws {
        let capabilities = Capabilities(handlers: ["sha256", "echo", "echo", "ädd"], labels: ["gpu", "eu", "gpu"])
        #expect(capabilities.handlers == ["echo", "sha256", "ädd"], "sorted by UTF-8 bytes, without repeats")
        #expect(capabilities.labels == ["eu", "gpu"])
        var w = ByteWriter(capacity: 64)
        capabilities.encode(into: &w)
        #expect(w.bytes.count == capabilities.encodedSize)
        #expect(try decode(w.bytes) == capabilities)
    }

    @Test func anAbsentOrUnknownListMeansEveryHandler() throws {
        #expect(try decode([]) == .unknown)
        #expect(try decode([0xFF, 0xFF, 1, 3] + Array("gpu".utf8)) == Capabilities(handlers: nil, labels: ["gpu"]))
        #expect(Capabilities.unknown.canRun("anything", requiring: []))
        #expect(!Capabilities.unknown.canRun("anything", requiring: ["gpu"]))
        #expect(!Capabilities(handlers: [], labels: []).canRun("echo", requiring: []), "an empty list serves nothing")
        let gpu = Capabilities(handlers: ["echo"], labels: ["gpu", "eu"])
        #expect(gpu.canRun("echo", requiring: ["gpu"]) && gpu.canRun("echo", requiring: ["eu", "gpu"]))
        #expect(!gpu.canRun("echo", requiring: ["us"]) && !gpu.canRun("sha256", requiring: []))
    }

    @Test func namesOutOfOrderRepeatedOrTooManyAreMalformed() {
        let e = Array("echo".utf8), s = Array("sha".utf8)
        #expect(throws: ProtocolViolation(.order, "handler name \"echo\" after \"sha\"")) {
            try decode([0, 2, 3] + s + [4] + e + [0])
        }
        #expect((try? decode([0, 2, 4] + e + [4] + e + [0])) == nil, "a repeated name")
        #expect((try? decode([0x10, 0x01])) == nil, "4097 handlers")
        #expect((try? decode([0, 0, 33] + Array(repeating: [1, 0x61], count: 33).joined())) == nil, "33 labels")
        #expect((try? decode([0, 1, 0, 0])) == nil, "an empty name")
        #expect((try? decode([0, 1, 4] + e)) == nil, "no label count")
    }

    @Test func dispatchOptionsRoundTripAndRejectAPriorityOutside1To9() throws {
        let options = DispatchOptions(priority: 9, requires: ["gpu", "eu"])
        var w = ByteWriter(capacity: 16)
        options.encode(into: &w)
        var r = ByteReader(w.bytes)
        #expect(try DispatchOptions.decode(&r) == options)
        for bad: UInt8 in [0, 10, 255] {
            var bytes = ByteReader([bad, 0])
            #expect(throws: ProtocolViolation.self) { try DispatchOptions.decode(&bytes) }
        }
        #expect(DispatchOptions.standard.isStandard && !options.isStandard)
    }

    @Test func aJobsBatchCarriesOptionsOnlyWithItsFlag() throws {
        var writer = JobBatchWriter(clientID: [7], withOptions: true)
        let gpu = DispatchOptions(priority: 8, requires: ["gpu"])
        let firstFits = writer.appendIfItFits(jobID: [1], handler: "a", deadline: 0, attempt: 1, payload: [1], options: gpu)
        let secondFits = writer.appendIfItFits(jobID: [2], handler: "a", deadline: 0, attempt: 1, payload: [2])
        #expect(firstFits && secondFits)
        let frames = writer.encode()
        #expect(frames[0][6] == Batch.optionsFlag)
        var seen: [JobMessage] = []
        try JobBatch.decode(frames).forEach { seen.append($0) }
        #expect(seen.map(\.options) == [gpu, .standard])
        var plain = JobBatchWriter(clientID: [7])
        plain.append(jobID: [1], handler: "a", deadline: 0, attempt: 1, payload: [], options: gpu)
        #expect(plain.encode()[0][6] == 0)
        var unflagged: [JobMessage] = []
        try JobBatch.decode(plain.encode()).forEach { unflagged.append($0) }
        #expect(unflagged.map(\.options) == [.standard], "without the flag no options are written")
    }

    @Test func anUnchangedMembersListsNobodyAndATableMatchesTheBody() throws {
        let unchanged = MembersMessage(epoch: 4, members: [], unchanged: true)
        #expect(try MembersMessage.decode(unchanged.encode()) == unchanged)
        let listed = MembersMessage.Member(workerID: [1], endpoint: "tcp://a:1", concurrency: 1)
        let body = MembersMessage(epoch: 4, members: [listed]).encode()[1]
        let header = Array(unchanged.encode()[0])
        #expect(throws: ProtocolViolation.self) { try MembersMessage.decode([header, body]) }
        // A table flag with no table for the listed member is truncated.
        let tableless = Array(header.prefix(12)) + [MembersMessage.capabilitiesFlag]
        #expect(throws: ProtocolViolation(.truncated, "capability table of 0 of 1 members")) { try MembersMessage.decode([tableless, body]) }
        // A legacy member beside an advertising one keeps "every handler".
        let mixed = MembersMessage(epoch: 5, members: [listed, .init(workerID: [2], endpoint: "tcp://b:1", concurrency: 1,
                                                                     capabilities: Capabilities(handlers: ["echo"], labels: []))])
        #expect(try MembersMessage.decode(mixed.encode()) == mixed)
    }
}

@Suite struct PriorityOutboxTests {
    @Test func higherPriorityLeavesFirstAndFIFOWithinOne() {
        var pending = PendingJobs()
        for (n, priority) in [(1, 5), (2, 1), (3, 9), (4, 5), (5, 9), (6, 1)] {
            _ = pending.add(job(n, priority: UInt8(priority)))
        }
        #expect(pending.sendAllIDs() == [3, 5, 1, 4, 2, 6])
    }

    @Test func aBatchTakesJobsOfTheFrontPriorityOnly() {
        var pending = PendingJobs()
        _ = pending.add(job(1, priority: 7))
        _ = pending.add(job(2, priority: 7))
        _ = pending.add(job(3, priority: 5))
        var taken: [Int] = []
        let span = pending.peekToSend { taken.append(Int($0.jobID[0])); return true }
        #expect(taken == [1, 2] && span == 2)
        pending.markSent(span: span)
        let next = pending.nextToSend()
        #expect(next?.jobID == [3])
    }

    @Test func aRequeuedJobGoesBackToTheFrontOfItsOwnPriority() {
        var pending = PendingJobs()
        _ = pending.add(job(1, priority: 3))
        _ = pending.add(job(2, priority: 3))
        _ = pending.add(job(3, priority: 8))
        #expect(pending.sendAllIDs() == [3, 1, 2])
        let requeued = pending.requeue([2]) && pending.requeue([3])
        #expect(requeued)
        _ = pending.add(job(4, priority: 3))
        #expect(pending.sendAllIDs() == [3, 2, 4])
    }

    @Test func parkedJobsStepAsideAndComeBackInOrder() {
        var pending = PendingJobs()
        for n in 1...4 { _ = pending.add(job(n, handler: n.isMultiple(of: 2) ? "gpu-only" : "echo")) }
        var sent: [Int] = []
        while let next = pending.nextToSend() {
            if next.handler == "gpu-only" {
                pending.parkNext()
            } else {
                pending.markSent()
                sent.append(Int(next.jobID[0]))
            }
        }
        #expect(sent == [1, 3] && pending.parkedCount == 2)
        let unparked = pending.unparkAll()
        #expect(unparked == 2)
        #expect(pending.sendAllIDs() == [2, 4])
    }

    @Test func parkedJobsStillExpireAndLeaveNothingBehind() {
        var pending = PendingJobs()
        let soon = Instant.current + .milliseconds(10)
        _ = pending.add(job(1, deadline: soon))
        _ = pending.nextToSend()
        pending.parkNext()
        let expired = pending.expire(at: soon + .seconds(1))
        #expect(expired.count == 1)
        pending.unparkAll()
        let next = pending.nextToSend()
        #expect(next == nil && pending.count == 0)
    }
}

@Suite struct RouteMessageTests {
    @Test func namesAMissingHandlerAndWhatTheMeshHas() {
        let text = RouteMessage.missing(handler: "resize", requires: [], handlers: ["echo", "sha256"], labels: [])
        #expect(text == "no live worker has a handler named \"resize\"; the mesh's workers have: echo, sha256")
    }

    @Test func namesTheMissingLabelWhenTheHandlerExists() {
        let text = RouteMessage.missing(handler: "echo", requires: ["eu", "gpu"], handlers: ["echo"], labels: ["eu"])
        #expect(text.contains("missing: \"gpu\""), "\(text)")
        #expect(!text.contains("missing: \"eu\""), "\(text)")
        #expect(text.contains("(labels: eu)"))
    }
}

@Suite struct MemberListenerTests {
    @Test func aClientGetsTheFullListOnChangeAndEveryTenthBeat() {
        var listener = MemberListener(lastHeard: .current)
        #expect(listener.needsFullList(epoch: 1), "nothing sent yet")
        listener.sentFull(epoch: 1)
        for _ in 0..<(MemberListener.refreshEvery - 1) {  // then the 10th beat carries the full list
            #expect(!listener.needsFullList(epoch: 1))
            listener.sentUnchanged()
        }
        #expect(listener.needsFullList(epoch: 1), "the periodic refresh")
        listener.sentFull(epoch: 1)
        #expect(listener.needsFullList(epoch: 2), "the list changed")
    }
}

@Suite struct LabelTests {
    @Test func labelRules() {
        for good in ["gpu", "region-eu", "team_a", "zone:1", "pool/images", "v1.2"] { #expect(LabelRules.problem(with: good) == nil, "\(good)") }
        for bad in ["", "with space", "ümlaut", "semi;colon", String(repeating: "x", count: 256)] {
            #expect(LabelRules.problem(with: bad) != nil, "\(bad)")
        }
    }

    @Test func priorities() {
        #expect(JobPriority(0) == nil && JobPriority(10) == nil)
        #expect(JobPriority(1) == .lowest && JobPriority(9) == .highest && JobPriority(5) == .default)
        #expect(JobPriority.low < .default && JobPriority.default < .high)
    }

    @Test func topologyReadsLabelsWaitForWorkersAndUnroutableTimeout() throws {
        let topology = try Topology.parse(yaml: """
            mode: reliable
            broker:
              clients: { bind: "tcp://127.0.0.1:0" }
              workers: { bind: "tcp://127.0.0.1:0" }
              unroutable_timeout: 5s
            worker: { labels: [gpu, region-eu] }
            client: { wait_for_workers: true }
            """)
        #expect(topology.worker.labels == ["gpu", "region-eu"])
        #expect(topology.client.waitForWorkers)
        #expect(topology.broker?.unroutableTimeout == .seconds(5))
        let defaults = try Topology.parse(yaml: "mode: local")
        #expect(defaults.worker.labels.isEmpty && !defaults.client.waitForWorkers)
    }

    @Test func badLabelsAndFlagsAreClearErrors() {
        func message(_ yaml: String) -> String? {
            do { _ = try Topology.parse(yaml: yaml, source: "t.yaml"); return nil } catch { return error.description }
        }
        #expect(message("mode: local\nworker: { labels: gpu }")?.contains("worker.labels: expected a list of labels") == true)
        #expect(message("mode: local\nworker: { labels: [\"has space\"] }")?.contains("letters, digits") == true)
        #expect(message("mode: local\nclient: { wait_for_workers: maybe }")?.contains("client.wait_for_workers: expected true or false") == true)
    }
}

/// Routing inside one process (local mode): the same client and worker code as direct mode.
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
    @Test func jobsOnTheirWayToAWorkerThatDropsTheirHandlerGoElsewhere() async throws {
        let mesh = try await localMesh(deadline: .seconds(30))
        var slow = Handlers()
        try slow.register("slow") { job in
            try await Task.sleep(for: .milliseconds(2))
            return job.payload
        }
        let dropping = try await mesh.worker(slow, concurrency: 1)
        try await mesh.worker(slow, concurrency: 4)
        let client = try await mesh.client()
        try await client.waitForWorkers(2, handling: "slow", timeout: .seconds(10))
        // Batches of up to 256: the first worker reads one past its read-ahead, the rest wait in
        // its socket when it drops the handler.
        let jobs = try (0..<1500).map { n in try client.enqueue("slow", withUnsafeBytes(of: UInt16(n)) { Array($0) }) }
        try await Task.sleep(for: .milliseconds(20))
        try dropping.update(handlers: Handlers())
        var failures: [String] = []
        for (n, job) in jobs.enumerated() {
            do {
                let expected = withUnsafeBytes(of: UInt16(n)) { Array($0) }
                if try await job.value() != expected { failures.append("\(n): wrong") }
            } catch {
                failures.append("\(n): \(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
        #expect(client.stats.resent > 0, "some jobs came back from the worker that dropped the handler")
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
