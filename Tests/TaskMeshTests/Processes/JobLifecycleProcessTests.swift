import Foundation
import Testing
@testable import TaskMesh

/// A job's whole life against real sink, broker and worker processes, in both modes: deadlines
/// that cancel running handlers, cancellation that reaches the handler, retries with backoff,
/// progress on its way to the client, and the CLI's flags for them.
@Suite(.serialized) struct JobLifecycleProcessTests {
    /// An echo job submitted now ends within 5 s: the worker's one slot is free (a job that
    /// still held it would keep the echo waiting for a minute).
    private func expectSlotFree(_ client: Client, id: String, _ failure: String) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try await client.submit("echo", Array(id.utf8), options: JobOptions(deadline: .seconds(20), id: JobID(id))) == Array(id.utf8))
        #expect(clock.now - start < .seconds(5), "\(failure)")
    }

    // MARK: Deadlines

    @Test(arguments: RunningHub.Kind.allCases)
    func aRunningJobIsCancelledAtItsDeadline(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let log = temporaryPath("deadline")
        let (worker, handle, client) = try await mesh.oneWorker(handlers: ["sleep", "echo"], log: log)

        let submitted = Date()
        let long = try client.enqueue("sleep", Array("5000".utf8), options: JobOptions(deadline: .seconds(1)))
        let next = try client.enqueue("echo", Array("next".utf8), options: JobOptions(deadline: .seconds(10), id: JobID("next")))
        await #expect { try await long.value() } throws: { ($0 as? JobError)?.code == .timedOut }
        #expect(try await next.value() == Array("next".utf8))
        // When the worker started it, by the execution log (same host, same wall clock).
        let started = try #require(executionStarts(log)["next"]).timeIntervalSince(submitted)
        #expect(started < 1.5, "\(kind): the job behind a 5 s job cancelled at its 1 s deadline started after \(started) s")
        try await eventually("the worker logs the cancellation") { worker.stderr.contains("cancelled a running job at its deadline") }
        #expect(executedJobIDs(log).count == 2)
        await handle.shutdown()
    }

    /// A handler that ignores its cancellation keeps its slot (a job behind it waits), and the
    /// worker reports it with the job's id.
    @Test func aHandlerIgnoringCancellationKeepsItsSlotAndIsReported() async throws {
        let mesh = try await RunningHub.start(.direct)
        let log = temporaryPath("ignoring")
        let (worker, handle, client) = try await mesh.oneWorker(handlers: ["hang", "echo"], log: log, extra: ["--fault-handlers"])
        let hung = try client.enqueue("hang", [], options: JobOptions(deadline: .seconds(1), id: JobID("stubborn")))
        let behind = try client.enqueue("echo", [1], options: JobOptions(deadline: .seconds(3)))
        await #expect { try await hung.value() } throws: { ($0 as? JobError)?.code == .timedOut }
        await #expect { try await behind.value() } throws: { ($0 as? JobError)?.code == .timedOut }
        try await eventually("the worker reports the handler ignoring its cancellation") {
            worker.stderr.contains("a cancelled handler has not returned") && worker.stderr.contains("job=stubborn")
        }
        #expect(executedJobIDs(log) == ["stubborn"], "the job behind it never got the slot")
        await handle.shutdown()
    }

    // MARK: Cancellation

    @Test(arguments: RunningHub.Kind.allCases)
    func cancelReachesQueuedAndRunningJobsAndLeavesFinishedOnes(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let log = temporaryPath("cancel")
        let (worker, handle, client) = try await mesh.oneWorker(handlers: ["sleep", "echo"], log: log)

        let finished = try client.enqueue("echo", Array("done".utf8), options: JobOptions(id: JobID("done")))
        #expect(try await finished.value() == Array("done".utf8))
        let running = try client.enqueue("sleep", Array("60000".utf8), options: JobOptions(id: JobID("running")))
        try await eventually("the long job runs") { executedJobIDs(log).contains("running") }
        let queued = try client.enqueue("echo", Array("queued".utf8), options: JobOptions(id: JobID("queued")))
        try await Task.sleep(for: .milliseconds(200))  // it reaches the worker's queue (direct) or the broker's
        queued.cancel()
        running.cancel()
        finished.cancel()
        await #expect { try await queued.value() } throws: { ($0 as? JobError)?.code == .cancelled }
        await #expect { try await running.value() } throws: { ($0 as? JobError)?.code == .cancelled }
        #expect(try await finished.value() == Array("done".utf8), "cancelling a finished job changes nothing")

        // The running handler was cancelled: the worker's one slot is free again at once.
        try await expectSlotFree(client, id: "after", "the cancelled 60 s job still held the worker's slot")
        #expect(!executedJobIDs(log).contains("queued"), "a job cancelled while queued never runs")
        #expect(client.stats.cancelsSent == 2)
        #expect(client.stats.droppedLateOrDuplicate == 0)
        #expect(worker.isRunning)
        await handle.shutdown()
    }

    /// A CANCEL reaches a worker that the sink forgot for a moment while the job ran (it
    /// missed its heartbeats, frozen past the liveness period): the client kept its link to
    /// the worker, and the cancelled handler frees the worker's one slot.
    @Test func aCancelReachesAWorkerTheSinkForgotForAMoment() async throws {
        let mesh = try await RunningHub.start(.direct)
        let log = temporaryPath("forgotten")
        let (worker, handle, client) = try await mesh.oneWorker(handlers: ["sleep", "echo"], log: log)
        let running = try client.enqueue("sleep", Array("60000".utf8), options: JobOptions(deadline: .seconds(60), id: JobID("running")))
        try await eventually("the long job runs") { executedJobIDs(log).contains("running") }
        worker.signal(SIGSTOP)
        try await eventually("the sink forgets the frozen worker") { client.stats.workers == 0 }
        worker.signal(SIGCONT)
        try await client.waitForWorkers(1, timeout: .seconds(10))
        running.cancel()
        await #expect { try await running.value() } throws: { ($0 as? JobError)?.code == .cancelled }
        try await eventually("the CANCEL leaves") { client.stats.cancelsSent == 1 }
        try await expectSlotFree(client, id: "after", "the cancelled job still held the slot of the worker the sink forgot")
        #expect(worker.isRunning)
        await handle.shutdown()
    }

    /// A job cancelled while it runs is not run again when its worker then dies, although the
    /// broker would otherwise give it another attempt.
    @Test func aCancelledReliableJobIsNotRetriedWhenItsWorkerDies() async throws {
        let mesh = try await RunningHub.start(.reliable, broker: "max_attempts: 3")
        let logA = temporaryPath("cancel-a"), logB = temporaryPath("cancel-b")
        let a = try await mesh.startWorker("a", handlers: ["hang"], concurrency: 1, log: logA, extra: ["--fault-handlers"])
        let (handle, client) = try await mesh.connect()
        try await client.waitForWorkers(1, timeout: .seconds(10))
        let hung = try client.enqueue("hang", [], options: JobOptions(id: JobID("hung")))
        try await eventually("the job runs on a") { executedJobIDs(logA).contains("hung") }
        let b = try await mesh.startWorker("b", handlers: ["hang", "echo"], concurrency: 1, log: logB, extra: ["--fault-handlers"])
        try await client.waitForWorkers(2, timeout: .seconds(10))
        hung.cancel()
        await #expect { try await hung.value() } throws: { ($0 as? JobError)?.code == .cancelled }
        try await Task.sleep(for: .milliseconds(200))  // the CANCEL reaches the broker
        a.signal(SIGKILL)
        _ = try await a.waitForExit(timeout: .seconds(10))
        // The broker notices a's death within the liveness period; the job must not move to b.
        #expect(try await client.submit("echo", [1], options: JobOptions(deadline: .seconds(10))) == [1])
        try await Task.sleep(for: .seconds(1))
        #expect(!executedJobIDs(logB).contains("hung"), "a cancelled job ran again after its worker died")
        #expect(b.isRunning)
        await handle.shutdown()
    }

    /// Ctrl-C on `taskmesh submit` cancels its job on the worker too.
    @Test(arguments: RunningHub.Kind.allCases)
    func interruptingSubmitCancelsItsJobOnTheWorker(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let log = temporaryPath("interrupt")
        let worker = try await mesh.startWorker("one", handlers: ["sleep", "echo"], concurrency: 1, log: log)
        let hubFlag = kind == .direct ? "--sink" : "--broker"
        let submit = try ChildProcess("submit", ["submit", "-t", mesh.topologyPath, hubFlag, mesh.clients, "sleep", "60000"])
        try await eventually("the job runs") { executedJobIDs(log).count == 1 }
        submit.signal(SIGINT)
        #expect(try await submit.waitForExit(timeout: .seconds(10)) == 130)
        #expect(submit.stderr.contains("interrupted"))
        // The worker's only slot is free again: the 60 s job was cancelled there.
        let (handle, client) = try await mesh.connect()
        try await mesh.waitForWorkers(client, count: 1, handlers: ["echo"])
        try await expectSlotFree(client, id: "after", "\(kind): the interrupted job still held the slot")
        #expect(worker.isRunning)
        await handle.shutdown()
    }

    // MARK: Retries

    /// The attempt times of a handler that fails its first `failures` attempts.
    private final class Attempts: Sendable {
        let times = Shared<[ContinuousClock.Instant]>([])
        func record() -> Int { times.update { $0.append(.now); return $0.count } }
        var gaps: [Duration] { let t = times.value; return zip(t.dropFirst(), t).map { $0 - $1 } }
    }

    private func flakyHandlers(_ attempts: Attempts, failures: Int, policy: RetryPolicy, final: Bool = false) throws -> Handlers {
        var handlers = Handlers()
        try handlers.register("flaky-local", retry: policy) { job in
            let n = attempts.record()
            #expect(job.context.attempt == n, "the context carries the attempt number")
            if final { throw HandlerFailure.final("broken for good") }
            if n <= failures { throw HandlerFailure.retryable("attempt \(n) failed") }
            return Array("ok at \(n)".utf8)
        }
        return handlers
    }

    @Test(arguments: RunningHub.Kind.allCases)
    func aFlakyJobSucceedsAfterItsRetriesWithBackoffBetweenThem(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let (handle, client) = try await mesh.connect()
        let attempts = Attempts()
        let policy = try RetryPolicy(maxAttempts: 4, base: .milliseconds(200), factor: 2, cap: .seconds(5), jitter: 0.5)
        try await handle.worker(flakyHandlers(attempts, failures: 2, policy: policy))
        try await mesh.waitForWorkers(client, count: 1, handlers: ["flaky-local"])
        #expect(try await client.submit("flaky-local", []) == Array("ok at 3".utf8))
        let gaps = attempts.gaps
        try #require(gaps.count == 2)
        // Attempt n + 1 waits base × 2^(n−1), less up to half of it (jitter), plus transit.
        for (n, gap) in gaps.enumerated() {
            let nominal = policy.nominalDelay(after: n + 1)
            // The upper bound leaves room for a loaded machine's transit; the lower one is exact.
            #expect(gap >= nominal / 2 && gap < nominal + .seconds(1), "\(kind): gap \(n + 1) was \(gap), nominal \(nominal)")
        }
        await handle.shutdown()
    }

    @Test(arguments: RunningHub.Kind.allCases)
    func aJobFailingEveryAttemptEndsWithTheLastErrorAndItsAttemptCount(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let (handle, client) = try await mesh.connect()
        let attempts = Attempts()
        try await handle.worker(flakyHandlers(attempts, failures: 10, policy: try RetryPolicy(maxAttempts: 3, base: .milliseconds(20))))
        try await mesh.waitForWorkers(client, count: 1, handlers: ["flaky-local"])
        do {
            _ = try await client.submit("flaky-local", [])
            Issue.record("a job failing every attempt succeeded")
        } catch {
            #expect(error.code == .handlerFailed)
            #expect(error.attempts == 3)
            #expect(error.errorType == "HandlerFailure")
            #expect(error.message == "attempt 3 failed", "the last attempt's error")
        }
        #expect(attempts.times.value.count == 3)
        await handle.shutdown()
    }

    @Test(arguments: RunningHub.Kind.allCases)
    func aFinalErrorIsNotRetried(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let (handle, client) = try await mesh.connect()
        let attempts = Attempts()
        try await handle.worker(flakyHandlers(attempts, failures: 10, policy: try RetryPolicy(maxAttempts: 5, base: .milliseconds(20)), final: true))
        try await mesh.waitForWorkers(client, count: 1, handlers: ["flaky-local"])
        await #expect { try await client.submit("flaky-local", []) } throws: {
            ($0 as? JobError)?.code == .handlerFailed && ($0 as? JobError)?.message == "broken for good"
        }
        #expect(attempts.times.value.count == 1)
        await handle.shutdown()
    }

    /// A job's own policy (the built-in `flaky` has none) makes the retries; the worker that
    /// ran the failed attempt dies during the backoff, and the retry runs on the other one.
    @Test(arguments: RunningHub.Kind.allCases)
    func retriesSurviveTheDeathOfTheWorkerThatRanTheFailedAttempt(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let logA = temporaryPath("retry-a"), logB = temporaryPath("retry-b")
        let a = try await mesh.startWorker("a", handlers: ["flaky"], concurrency: 1, log: logA)
        let b = try await mesh.startWorker("b", handlers: ["flaky"], concurrency: 1, log: logB)
        let (handle, client) = try await mesh.connect()
        try await mesh.waitForWorkers(client, count: 2, handlers: ["flaky"])
        let policy = try RetryPolicy(maxAttempts: 4, base: .seconds(2), factor: 1, cap: .seconds(2), jitter: 0)
        let job = try client.enqueue("flaky", Array("1".utf8), options: JobOptions(id: JobID("flaky-1"), retry: policy))
        try await eventually("the first attempt ran") { executedJobIDs(logA).count + executedJobIDs(logB).count == 1 }
        // Its answer (`retry`) must have left the worker before it dies: a worker that dies while
        // it runs an attempt loses that attempt in direct mode (at most once).
        if kind == .direct {
            try await eventually("the client holds the retry") { client.stats.retried == 1 }
        } else {
            try await Task.sleep(for: .milliseconds(300))  // well inside the 2 s backoff
        }
        let (ran, other, otherLog) = executedJobIDs(logA).isEmpty ? (b, a, logA) : (a, b, logB)
        ran.signal(SIGKILL)
        _ = try await ran.waitForExit(timeout: .seconds(10))
        #expect(try await job.value() == Array("ok after 1 failures".utf8))
        #expect(executedJobIDs(otherLog) == ["flaky-1"], "\(kind): the retry ran on the surviving worker")
        #expect(other.isRunning)
        await handle.shutdown()
    }

    @Test func theCommandLineRetriesWithBackoff() async throws {
        let mesh = try await RunningHub.start(.direct)
        let worker = try await mesh.startWorker("w", handlers: ["flaky"], log: temporaryPath("cli-retry"))
        let args = ["submit", "-t", mesh.topologyPath, "--sink", mesh.clients, "flaky", "2"]
        let enough = try ChildProcess("submit", args + ["--retries", "2", "--backoff", "50ms"])
        #expect(try await enough.waitForExit() == 0, "\(enough.stderr)")
        #expect(enough.stdout == "ok after 2 failures\n")
        let tooFew = try ChildProcess("submit", args + ["--retries", "1", "--backoff", "50ms"])
        #expect(try await tooFew.waitForExit() != 0)
        #expect(tooFew.stderr.contains("handlerFailed") && tooFew.stderr.contains("after 2 attempts"), "\(tooFew.stderr)")
        let bad = try ChildProcess("submit", args + ["--retries", "100"])
        #expect(try await bad.waitForExit() != 0)
        #expect(bad.stderr.contains("--retries must be from 0 to 99"))
        #expect(worker.isRunning)
    }

    // MARK: Progress

    @Test(arguments: RunningHub.Kind.allCases)
    func aChattyHandlersProgressArrivesCoalescedInOrderAndLastBeforeItsResult(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let (handle, client) = try await mesh.connect()
        var handlers = Handlers()
        try handlers.register("chatty") { job in
            for n in 1...10_000 {
                job.context.progress(n, of: 10_000, detail: Array("step \(n)".utf8))
                if n.isMultiple(of: 1000) { try await Task.sleep(for: .milliseconds(100)) }
            }
            return Array("done".utf8)
        }
        try await handle.worker(handlers)
        try await mesh.waitForWorkers(client, count: 1, handlers: ["chatty"])
        let clock = ContinuousClock()
        let start = clock.now
        let job = try client.enqueue("chatty", [])
        var updates: [JobProgress] = []
        for await update in job.progress { updates.append(update) }
        let elapsed = clock.now - start
        #expect(try await job.value() == Array("done".utf8))
        let last = try #require(updates.last)
        #expect(last.completed == 10_000 && last.total == 10_000 && last.detail == Array("step 10000".utf8), "the last update arrives")
        #expect(zip(updates, updates.dropFirst()).allSatisfy { $0.completed < $1.completed }, "in order")
        // At most one update per 250 ms per job, plus the last one.
        let allowed = Int(elapsed / .milliseconds(250)) + 2
        #expect(updates.count >= 2 && updates.count <= allowed, "\(kind): \(updates.count) updates in \(elapsed), at most \(allowed)")
        await handle.shutdown()
    }

    @Test func theCommandLinePrintsProgressEvents() async throws {
        let mesh = try await RunningHub.start(.direct)
        let worker = try await mesh.startWorker("w", handlers: ["sleep"], log: temporaryPath("cli-events"))
        let args = ["submit", "-t", mesh.topologyPath, "--sink", mesh.clients, "sleep", "800", "--events"]
        let text = try ChildProcess("submit", args)
        #expect(try await text.waitForExit() == 0, "\(text.stderr)")
        let lines = text.stdout.split(separator: "\n")
        #expect(lines.last == "800")
        #expect(lines.dropLast().allSatisfy { $0.hasPrefix("progress ") && $0.hasSuffix("/800") }, "\(lines)")
        #expect(lines.dropLast().last == "progress 800/800")
        let json = try ChildProcess("submit", args + ["--json", "--count", "2"])
        #expect(try await json.waitForExit() == 0, "\(json.stderr)")
        let events = json.stdout.split(separator: "\n").filter { $0.contains("\"event\":\"progress\"") }
        #expect(events.contains { $0.contains("\"completed\":800") && $0.contains("\"index\":0") })
        #expect(events.contains { $0.contains("\"completed\":800") && $0.contains("\"index\":1") })
        #expect(worker.isRunning)
    }
}

extension RunningHub {
    /// One `taskmesh worker` of concurrency 1 serving `handlers`, and a client that knows it.
    func oneWorker(handlers: [String], log: String, extra: [String] = []) async throws -> (ChildProcess, Mesh, Client) {
        let worker = try await startWorker("one", handlers: handlers, concurrency: 1, log: log, extra: extra)
        let (handle, client) = try await connect()
        try await waitForWorkers(client, count: 1, handlers: handlers)
        return (worker, handle, client)
    }
}
