import Foundation
import Testing
@testable import TaskMesh

struct AddRequest: Codable, Sendable {
    let x: Int
    let y: Int
}

struct AddResult: Codable, Sendable, Equatable {
    let sum: Int
}

/// Handlers shared by the in-process tests.
func testHandlers() -> Handlers {
    // The names are constants, valid by construction: `try!` cannot fail here.
    var handlers = Handlers()
    try! handlers.register("echo") { $0.payload }
    try! handlers.register("add", as: AddRequest.self, validate: { request in
        if request.x < 0 || request.y < 0 { throw JobRejection("x and y must not be negative") }
    }) { request in
        AddResult(sum: request.x + request.y)
    }
    try! handlers.register("fail") { _ in throw AlwaysFails(message: "this handler always fails") }
    try! handlers.register("sleep") { job in
        let ms = Int(String(decoding: job.payload, as: UTF8.self)) ?? 0
        try await Task.sleep(for: .milliseconds(ms))
        return job.payload
    }
    return handlers
}

func localMesh(deadline: Duration = .seconds(10), maxPending: Int = 100_000, maxPayload: Int = 1024 * 1024,
               prefetch: Int? = nil) async throws -> Mesh {
    var topology = Topology.local
    topology.worker.prefetch = prefetch
    topology.client.deadline = deadline
    topology.client.maxPending = maxPending
    topology.limits.maxPayload = maxPayload
    topology.heartbeat.interval = .milliseconds(100)
    topology.worker.drainTimeout = .seconds(1)
    return try await Mesh.start(topology: topology)
}

/// Counts the handlers running at once, and the most seen.
final class RunningGauge: Sendable {
    private let counts = Shared((now: 0, most: 0))

    func enter() { counts.update { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { counts.update { $0.now -= 1 } }
    var most: Int { counts.value.most }
}

@Suite struct LocalModeTests {
    @Test func addExampleRunsEndToEnd() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        let result: AddResult = try await client.submit("add", AddRequest(x: 1, y: 2))
        #expect(result == AddResult(sum: 3))
        await mesh.shutdown()
    }

    @Test func echoCarriesBinaryPayloads() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        let payload: [UInt8] = [0, 255, 1, 254, 0]
        #expect(try await client.submit("echo", payload) == payload)
        #expect(try await client.submit("echo", []) == [])
        await mesh.shutdown()
    }

    @Test func manyJobsAcrossTwoWorkersAllReturnOnce() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        let payloads = (0..<2000).map { i in Array("job-\(i)".utf8) }
        var seen = Set<Int>()
        for await outcome in client.batch("echo", payloads, window: 256) {
            #expect(try outcome.result.get() == payloads[outcome.index])
            #expect(seen.insert(outcome.index).inserted)
        }
        #expect(seen.count == payloads.count)
        #expect(client.stats.droppedLateOrDuplicate == 0)
        await mesh.shutdown()
    }

    @Test func unknownHandlerFailsFast() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        // No worker has it: the job ends at once, naming the handler and what the mesh has.
        await #expect { try await client.submit("nosuch", [1]) } throws: { error in
            guard let error = error as? JobError else { return false }
            return error.code == .noWorkers && error.message.contains("\"nosuch\"") && error.message.contains("echo")
        }
        await mesh.shutdown()
    }

    @Test func validationRejectsWithTheHandlersMessage() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        do {
            let _: AddResult = try await client.submit("add", AddRequest(x: -1, y: 2))
            Issue.record("a negative input must be rejected")
        } catch {
            #expect(error.code == .rejected)
            #expect(error.message == "x and y must not be negative")
        }
        await #expect { try await client.submit("add", Array("not json".utf8)) } throws: {
            ($0 as? JobError)?.code == .rejected && ($0 as? JobError)?.message.contains("AddRequest") == true
        }
        await mesh.shutdown()
    }

    @Test func handlerFailureCarriesItsMessage() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        await #expect { try await client.submit("fail", []) } throws: {
            ($0 as? JobError)?.code == .handlerFailed && ($0 as? JobError)?.message == "this handler always fails"
        }
        await mesh.shutdown()
    }

    @Test func aWorkerRunsAtMostItsConcurrencyOfHandlersAtOnce() async throws {
        let mesh = try await localMesh()
        let running = RunningGauge()
        var handlers = Handlers()
        try handlers.register("slow") { job in
            running.enter()
            try await Task.sleep(for: .milliseconds(20))
            running.leave()
            return job.payload
        }
        try await mesh.worker(handlers, concurrency: 3)
        let client = try await mesh.client()
        for await outcome in client.batch("slow", (0..<30).map { [UInt8($0)] }, window: 30) {
            #expect(try outcome.result.get() == [UInt8(outcome.index)])
        }
        #expect(running.most == 3, "30 queued jobs keep exactly 3 handlers busy")
        await mesh.shutdown()
    }

    /// Lone jobs of a fast handler run on the worker's loop thread once measured; such a job
    /// that suspends after all still completes (on the executor), the handler is no longer
    /// measured fast, and the concurrency bound holds with inline and runner jobs mixed.
    @Test func fastHandlersRunInlineAndASuspendingOneStillCompletes() async throws {
        let mesh = try await localMesh()
        let running = RunningGauge()
        var handlers = Handlers()
        try handlers.register("mostly-fast") { job in
            running.enter()
            defer { running.leave() }
            if job.payload.first == 1 { try await Task.sleep(for: .milliseconds(30)) }
            return job.payload
        }
        try await mesh.worker(handlers, concurrency: 2)
        let client = try await mesh.client()
        // One at a time: after `samplesNeeded` of them, lone jobs run inline.
        for i in 0..<(2 * HandlerTimings.samplesNeeded) {
            #expect(try await client.submit("mostly-fast", [0, UInt8(i)]) == [0, UInt8(i)])
        }
        // A lone job that suspends: it ends like any other.
        #expect(try await client.submit("mostly-fast", [1, 99]) == [1, 99])
        // A burst of fast and suspending jobs: every one returns, never more than 2 at once.
        let payloads = (0..<40).map { [UInt8($0 % 5 == 0 ? 1 : 0), UInt8($0)] }
        for await outcome in client.batch("mostly-fast", payloads, window: 40) {
            #expect(try outcome.result.get() == payloads[outcome.index])
        }
        for i in 0..<HandlerTimings.samplesNeeded {
            #expect(try await client.submit("mostly-fast", [0, UInt8(i)]) == [0, UInt8(i)])
        }
        #expect(running.most <= 2, "at most concurrency handlers at once, inline ones included")
        await mesh.shutdown()
    }

    @Test func handlerTimingsMarkOnlyMeasuredFastHandlers() {
        var timings = HandlerTimings()
        #expect(!timings.isFast("echo"), "unmeasured")
        for _ in 0..<(HandlerTimings.samplesNeeded - 1) { timings.record("echo", .microseconds(2)) }
        #expect(!timings.isFast("echo"), "too few samples")
        timings.record("echo", .microseconds(2))
        #expect(timings.isFast("echo"))
        // A run of slow jobs (or suspensions) takes it off the loop thread.
        for _ in 0..<4 { timings.record("echo", .milliseconds(5)) }
        #expect(!timings.isFast("echo"))
        for _ in 0..<(HandlerTimings.samplesNeeded * 4) { timings.record("hash", .milliseconds(1)) }
        #expect(!timings.isFast("hash"), "a slow handler never runs inline")
        // One very slow job of a fast handler keeps it off the loop thread for a while.
        for _ in 0..<64 { timings.record("mostly", .microseconds(1)) }
        #expect(timings.isFast("mostly"))
        timings.record("mostly", .milliseconds(2))
        for _ in 0..<(HandlerTimings.cooldown - 1) { timings.record("mostly", .microseconds(1)) }
        #expect(!timings.isFast("mostly"), "still cooling down after a slow job")
        timings.record("mostly", .microseconds(1))
        #expect(timings.isFast("mostly"))
    }

    /// A lone job far slower than the mean (a thread descheduled mid-job) barely moves the mean
    /// the credit is sized by; a second in a row counts whole, since the jobs did become slower.
    @Test func aLoneSlowJobBarelyMovesTheMeanJobTime() throws {
        var timings = HandlerTimings()
        for _ in 0..<200 { timings.record("echo", .microseconds(10)) }
        let before = try #require(timings.meanJobDuration)
        timings.record("echo", .milliseconds(8))
        let afterOne = try #require(timings.meanJobDuration)
        #expect(afterOne < before * 5 / 4, "one 8 ms job moved the mean from \(before) to \(afterOne)")
        timings.record("echo", .milliseconds(8))
        let afterTwo = try #require(timings.meanJobDuration)
        #expect(afterTwo > .microseconds(100), "two slow jobs in a row count: \(afterTwo)")
        #expect(timings.slowJobsRecorded == 2)
    }

    @Test func handlerTimingsKeepEachHandlersRecordWhenJobsAlternate() {
        var timings = HandlerTimings()
        for _ in 0..<HandlerTimings.samplesNeeded {
            timings.record("echo", .microseconds(2))
            timings.record("hash", .milliseconds(3))
        }
        #expect(timings.isFast("echo"))
        #expect(!timings.isFast("hash"))
        timings.record("hash", .milliseconds(3))  // echo is no longer the latest
        #expect(timings.isFast("echo"), "echo's samples survive other handlers' jobs")
        timings.record("echo", .microseconds(2))
        #expect(timings.isFast("echo"))
        #expect(!timings.isFast("hash"))
    }

    /// Each job goes to the worker with the fewest unanswered jobs: a slow worker gets few of a
    /// steady stream, a fast one most of it. (The slow one takes 100 ms, well beyond what the
    /// fast one's handlers may wait for a cooperative thread while the whole suite runs.)
    @Test func aSlowWorkerGetsFewerJobsThanAFastOne() async throws {
        let mesh = try await localMesh()
        var slow = Handlers()
        try slow.register("work") { _ in
            try await Task.sleep(for: .milliseconds(100))
            return Array("slow".utf8)
        }
        var fast = Handlers()
        try fast.register("work") { _ in Array("fast".utf8) }
        try await mesh.worker(slow, concurrency: 4)
        try await mesh.worker(fast, concurrency: 4)
        let client = try await mesh.client()
        try await client.waitForWorkers(2, timeout: .seconds(10))
        var served: [String: Int] = [:]
        for await outcome in client.batch("work", (0..<300).map { [UInt8($0 & 0xFF)] }, window: 4) {
            served[String(decoding: try outcome.result.get(), as: UTF8.self), default: 0] += 1
        }
        #expect(served["slow", default: 0] + served["fast", default: 0] == 300)
        #expect(served["slow", default: 0] * 2 < served["fast", default: 0], "\(served)")
        await mesh.shutdown()
    }

    @Test func slowJobTimesOutAtItsDeadline() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        let start = ContinuousClock().now
        let timedOut = ConditionClock(until: .seconds(30)) { [client] in client.stats.timedOut >= 1 }
        await #expect { try await client.submit("sleep", Array("2000".utf8), options: JobOptions(deadline: .milliseconds(200))) } throws: {
            ($0 as? JobError)?.code == .timedOut
        }
        try await eventually("the watcher saw the timeout") { timedOut.instant != nil }
        let ended = try #require(timedOut.instant) - start
        #expect(ended >= .milliseconds(200) && ended < .seconds(1), "timed out after \(ended), deadline 200 ms")
        await mesh.shutdown()
    }

    @Test func oversizedPayloadIsRefusedBeforeSending() async throws {
        let mesh = try await localMesh(maxPayload: 1024)
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        #expect { try client.enqueue("echo", [UInt8](repeating: 0, count: 1025)) } throws: { ($0 as? JobError)?.code == .payloadTooLarge }
        #expect(try await client.submit("echo", [UInt8](repeating: 1, count: 1024)).count == 1024)
        await mesh.shutdown()
    }

    @Test func noWorkersEndsAsNoWorkers() async throws {
        let mesh = try await localMesh()
        let client = try await mesh.client()
        await #expect { try await client.submit("echo", [1], options: JobOptions(deadline: .milliseconds(200))) } throws: {
            ($0 as? JobError)?.code == .noWorkers
        }
        await mesh.shutdown()
    }

    @Test func closedClientFailsPendingAndNewJobs() async throws {
        let mesh = try await localMesh()
        let client = try await mesh.client()
        let handle = try client.enqueue("echo", [1])
        await client.close()
        await #expect { try await handle.value() } throws: { ($0 as? JobError)?.code == .meshClosed }
        #expect { try client.enqueue("echo", [1]) } throws: { ($0 as? JobError)?.code == .meshClosed }
        await mesh.shutdown()
    }

    @Test func cancelEndsTheJobAndCancelsItsHandler() async throws {
        let mesh = try await localMesh()
        let worker = try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        let handle = try client.enqueue("sleep", Array("60000".utf8))
        try await eventually("the worker started the job") { worker.stats.inFlight == 1 }
        handle.cancel()
        await #expect { try await handle.value() } throws: { ($0 as? JobError)?.code == .cancelled }
        // The CANCEL reaches the worker: the handler's sleep ends at once, its slot frees.
        try await eventually("the handler was cancelled", timeout: .seconds(5)) { worker.stats.inFlight == 0 && worker.stats.cancelled == 1 }
        #expect(try await client.submit("sleep", Array("30".utf8)) == Array("30".utf8))
        #expect(client.stats.cancelsSent == 1)
        #expect(client.stats.droppedLateOrDuplicate == 0, "the worker's `cancelled` answer is no late result")
        await mesh.shutdown()
    }

    @Test func cancelBeforeSendingNeverRunsTheJob() async throws {
        let mesh = try await localMesh()
        let client = try await mesh.client()
        let handle = try client.enqueue("echo", [1])
        handle.cancel()
        await #expect { try await handle.value() } throws: { ($0 as? JobError)?.code == .cancelled }
        let worker = try await mesh.worker(testHandlers())
        #expect(try await client.submit("echo", [2]) == [2])
        #expect(worker.stats.received == 1)
        await mesh.shutdown()
    }

    @Test func cancellingTheAwaitingTaskCancelsTheJob() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        let task = Task { try await client.submit("sleep", Array("5000".utf8)) }
        try await eventually("the job is pending") { client.stats.pending == 1 }
        task.cancel()
        await #expect { try await task.value } throws: { ($0 as? JobError)?.code == .cancelled }
        await mesh.shutdown()
    }

    @Test func duplicatePendingIDIsRefused() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        let first = try client.enqueue("sleep", Array("200".utf8), options: JobOptions(id: JobID("same")))
        let second = try client.enqueue("sleep", Array("200".utf8), options: JobOptions(id: JobID("same")))
        await #expect { try await second.value() } throws: { ($0 as? JobError)?.code == .duplicateJobID }
        #expect(try await first.value() == Array("200".utf8))
        await mesh.shutdown()
    }

    @Test func overloadedPastMaxPending() async throws {
        let mesh = try await localMesh(maxPending: 3)
        let client = try await mesh.client()
        for _ in 0..<3 { _ = try client.enqueue("echo", [1], options: JobOptions(deadline: .seconds(5))) }
        #expect { try client.enqueue("echo", [1]) } throws: { ($0 as? JobError)?.code == .overloaded }
        await mesh.shutdown()
    }

    @Test func undecodableResultIsDecodingFailed() async throws {
        let mesh = try await localMesh()
        try await mesh.worker(testHandlers())
        let client = try await mesh.client()
        await #expect { let _: AddResult = try await client.submit("echo", AddRequest(x: 1, y: 1)) } throws: {
            ($0 as? JobError)?.code == .decodingFailed
        }
        await mesh.shutdown()
    }
}

struct AlwaysFails: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
