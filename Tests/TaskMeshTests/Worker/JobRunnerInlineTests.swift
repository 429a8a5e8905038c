import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

#if canImport(Glibc)
import Glibc
#endif

/// Batches of a handler measured fast run on the loop's own thread (here: the test's), within a
/// time budget, handing the rest to the runners; the concurrency bound holds throughout.
struct JobRunnerInlineTests {
    private let clientID = Array("inline-test".utf8)

    /// `inlineBudget`: the tests that expect every job to run inline give a budget no
    /// preemption of a loaded machine can use up; the one about the budget keeps the real one.
    private func makeRunner(_ handlers: Handlers, concurrency: Int, inlineBudget: Duration = .seconds(10)) throws -> JobRunner {
        JobRunner(handlers: handlers, concurrency: concurrency, limit: 1 << 20, signal: try Signal(),
                  published: Shared(WorkerStats()), logger: Logger(label: "inline-test"), inlineBudget: inlineBudget)
    }

    private func jobID(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(n).bigEndian) { Array($0) } }

    /// One JOBS message of jobs `ids`, each with payload `[mark(id)]`.
    private func batch(_ ids: Range<Int>, handler: String, mark: (Int) -> UInt8 = { _ in 0 }) -> [UInt8] {
        var writer = JobBatchWriter(clientID: clientID)
        for n in ids {
            let fits = writer.appendIfItFits(jobID: jobID(n), handler: handler, deadline: 0, attempt: 1, payload: [mark(n)])
            #expect(fits)
        }
        return writer.encode()
    }

    /// Lone jobs through the runners until the handler is measured fast, then waits until
    /// every runner is idle (a runner reports a job before it asks for the next).
    private func warmUp(_ runner: JobRunner, handler: String, concurrency: Int = 2) async throws {
        try await measure(runner, handler: handler)
        try await eventually("every runner idle") { runner.idleRunners == concurrency }
    }

    private func measure(_ runner: JobRunner, handler: String) async throws {
        // One real job through the runners, then timings as a fast machine measures them: what
        // these tests check is what happens once a handler counts as fast, on any machine
        // (`HandlerTimings` has tests of its own).
        runner.accept(JobMessage(clientID: clientID, jobID: jobID(1_000_000), handler: handler, deadline: 0, attempt: 1, payload: [0]).encode(),
                      declining: false)
        runner.startAccepted()
        try await eventually("the first job ended") {
            runner.collectCompletions()
            return runner.inFlight == 0
        }
        for _ in 0..<HandlerTimings.samplesNeeded { runner.recordTiming(handler, .microseconds(1)) }
        #expect(runner.runsInline(handler))
    }

    /// The handler's log: the thread each job ran on, by job payload mark.
    private final class ThreadLog: Sendable {
        let threads = Shared<[UInt]>([])
        func record() { threads.update { $0.append(UInt(pthread_self())) } }
    }

    @Test func aBatchOfAFastHandlerRunsOnTheLoopThread() async throws {
        let log = ThreadLog()
        var handlers = Handlers()
        try handlers.register("echo") { job in
            if job.payload == [1] { log.record() }
            return job.payload
        }
        let runner = try makeRunner(handlers, concurrency: 2)
        try await warmUp(runner, handler: "echo")

        let answered = runner.unanswered
        runner.accept(batch(0..<50, handler: "echo", mark: { _ in 1 }), declining: false)
        let loopThread = UInt(pthread_self())
        runner.startAccepted()
        let threads = log.threads.value
        #expect(threads.count == 50, "every job ran before startAccepted returned")
        #expect(threads.allSatisfy { $0 == loopThread }, "on the caller's thread")
        #expect(runner.inFlight == 0)
        #expect(runner.unanswered - answered == 50, "their results wait for the socket")
        runner.close()
    }

    @Test func anInlineBatchOverItsBudgetHandsTheRestToTheRunners() async throws {
        let log = ThreadLog()
        let running = RunningGauge()
        var handlers = Handlers()
        try handlers.register("spin") { job in
            running.enter()
            defer { running.leave() }
            if job.payload == [1] {
                log.record()
                let until = ContinuousClock.now + .microseconds(20)
                while ContinuousClock.now < until {}
            }
            return job.payload
        }
        let runner = try makeRunner(handlers, concurrency: 2, inlineBudget: JobRunner.inlineBudget)
        try await warmUp(runner, handler: "spin")

        let count = 200  // 4 ms of work: far over the budget
        let answered = runner.unanswered
        runner.accept(batch(0..<count, handler: "spin", mark: { _ in 1 }), declining: false)
        let loopThread = UInt(pthread_self())
        runner.startAccepted()
        let inline = log.threads.value.filter { $0 == loopThread }.count
        #expect(inline >= 1 && inline < count, "some ran inline, then the budget ran out (\(inline))")
        try await eventually("every job ended") {
            runner.collectCompletions()
            return runner.inFlight == 0
        }
        #expect(runner.unanswered - answered == count)
        #expect(log.threads.value.count == count, "each job ran once")
        #expect(running.most <= 2, "at most concurrency handlers at once")
        runner.close()
    }

    /// A job that suspends sends the loop on its way; the jobs after it go to the other runners
    /// instead of waiting behind it.
    @Test func jobsAfterASuspendingOneGoToTheRunners() async throws {
        let gate = Shared(false)
        let running = RunningGauge()
        var handlers = Handlers()
        try handlers.register("gated") { job in
            running.enter()
            defer { running.leave() }
            if job.payload == [1] {
                while !gate.value { try await Task.sleep(for: .milliseconds(1)) }
            }
            return job.payload
        }
        let runner = try makeRunner(handlers, concurrency: 2)
        try await warmUp(runner, handler: "gated")

        let answered = runner.unanswered
        runner.accept(batch(0..<20, handler: "gated", mark: { $0 == 2 ? 1 : 0 }), declining: false)
        runner.startAccepted()
        #expect(runner.unanswered - runner.inFlight - answered == 2, "the two jobs before the suspending one ended inline")
        try await eventually("the 17 jobs after the suspended one ended while it waits") {
            runner.collectCompletions()
            return runner.inFlight == 1
        }
        gate.update { $0 = true }
        try await eventually("the suspended job ended") {
            runner.collectCompletions()
            return runner.inFlight == 0
        }
        #expect(runner.unanswered - answered == 20)
        #expect(running.most <= 2, "at most concurrency handlers at once")
        runner.close()
    }
}
