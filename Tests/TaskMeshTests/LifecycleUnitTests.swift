import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// The job lifecycle's parts on their own: the handler API, retry policies and their wire form,
/// progress coalescing, typed errors, and the broker's CANCEL and retry bookkeeping.
struct LifecycleUnitTests {
    // MARK: Handler API

    @Test func registeringABadHandlerNameThrows() {
        var handlers = Handlers()
        #expect(throws: HandlerNameError(name: "")) { try handlers.register("") { $0.payload } }
        let long = String(repeating: "x", count: 256)
        #expect(throws: HandlerNameError(name: long)) { try handlers.register(long) { $0.payload } }
        #expect(handlers.names.isEmpty)
    }

    @Test func aHandlerSeesItsJobContext() async throws {
        let mesh = try await localMesh()
        let seen = Shared<JobContext?>(nil)
        var handlers = Handlers()
        try handlers.register("context", as: [Int].self) { (input: [Int], context: JobContext) in
            seen.update { $0 = context }
            context.logger.debug("running")  // a logger with the job's metadata
            return input.reduce(0, +)
        }
        try await mesh.worker(handlers)
        let client = try await mesh.client()
        let sum: Int = try await client.submit("context", [1, 2, 3], options: JobOptions(deadline: .seconds(30), id: JobID("ctx-1")))
        #expect(sum == 6)
        let context = try #require(seen.value)
        #expect(context.id == JobID("ctx-1"))
        #expect(context.handler == "context")
        #expect(context.attempt == 1)
        #expect(context.clientID.count == 16)
        let deadline = try #require(context.deadline)
        let left = ContinuousClock.now.duration(to: deadline)
        #expect(left > .seconds(20) && left <= .seconds(30), "the deadline is the time remaining on this host's clock: \(left)")
        #expect(context.logger[metadataKey: "job"] == "ctx-1")
        await mesh.shutdown()
    }

    @Test func aHandlersErrorReachesTheClientWithItsTypeName() async throws {
        struct ImageError: Error, CustomStringConvertible {
            var description: String { "no such image" }
        }
        let mesh = try await localMesh()
        var handlers = Handlers()
        try handlers.register("image") { _ in throw ImageError() }
        try await mesh.worker(handlers)
        let client = try await mesh.client()
        do {
            _ = try await client.submit("image", [])
            Issue.record("the failing handler succeeded")
        } catch {
            #expect(error.code == .handlerFailed)
            #expect(error.errorType == "ImageError")
            #expect(error.message == "no such image")
        }
        await mesh.shutdown()
    }

    @Test func jobErrorRoundTripsThroughJSON() throws {
        let error = JobError(.handlerFailed, "no such image", attempts: 3, errorType: "ImageError")
        let decoded = try JSONDecoder().decode(JobError.self, from: try JSONEncoder().encode(error))
        #expect(decoded == error)
        #expect(decoded.code == .handlerFailed)
        let json = String(decoding: try JSONEncoder().encode(JobError(.cancelled)), as: UTF8.self)
        #expect(json.contains("\"code\":\"cancelled\""))
    }

    @Test func errorCodesAreEnumsAUserCanSwitchOver() throws {
        // Exhaustive switches: a code added later is a compile error here, not a silent default.
        func action(_ code: JobError.Code) -> String {
            switch code {
            case .unknownHandler, .noWorkers: "deploy a worker"
            case .rejected, .invalidJob, .payloadTooLarge, .duplicateJobID, .badRequest, .decodingFailed: "fix the job"
            case .handlerFailed, .attemptsExhausted: "look at the handler"
            case .timedOut, .overloaded: "try again later"
            case .meshClosed, .cancelled: "nothing"
            }
        }
        #expect(action(.overloaded) == "try again later")
        func security(_ code: SecurityError.Code) -> Bool {
            switch code {
            case .badKeyFile, .missingKey, .plaintextOffLoopback: true
            case .failsOpen, .selfTestInconclusive, .curveUnavailable: false
            }
        }
        #expect(security(.missingKey))
        #expect(JobError.Code.timedOut.description == "timedOut")
        // A code this version does not know is a decoding error, not a made-up code.
        let unknown = Data(#"{"code":"somethingNew","message":"","attempts":0}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(JobError.self, from: unknown) }
    }

    @Test func failedBodiesSplitIntoTypeAndMessage() {
        let typed = ResultMessage.handlerFailure("Module.ImageError: no such image: x.png", attempts: 1)
        #expect(typed.errorType == "Module.ImageError" && typed.message == "no such image: x.png")
        let plain = ResultMessage.handlerFailure("disk full, try later", attempts: 1)
        #expect(plain.errorType == nil && plain.message == "disk full, try later")
    }

    // MARK: Retry policies

    @Test func retryPoliciesRefuseValuesOutOfRange() {
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 0) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 101) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 3, factor: 0.5) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 3, jitter: 1.5) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 3, base: .seconds(2), cap: .seconds(1)) }
    }

    @Test func backoffGrowsByItsFactorUpToItsCapLessItsJitter() throws {
        let policy = try RetryPolicy(maxAttempts: 10, base: .milliseconds(100), factor: 3, cap: .seconds(2), jitter: 0.25)
        #expect(policy.nominalDelay(after: 1) == .milliseconds(100))
        #expect(policy.nominalDelay(after: 2) == .milliseconds(300))
        #expect(policy.nominalDelay(after: 3) == .milliseconds(900))
        #expect(policy.nominalDelay(after: 4) == .seconds(2), "capped")
        #expect(policy.delay(after: 2, random: 0) == .milliseconds(300))
        #expect(policy.delay(after: 2, random: 1) == .milliseconds(225), "at most a quarter taken off")
    }

    @Test func whichFailuresRetry() throws {
        struct Plain: Error {}
        let all = try RetryPolicy(maxAttempts: 3, base: .milliseconds(10), jitter: 0)
        #expect(all.retry(after: 1, error: Plain()) == .milliseconds(10))
        #expect(all.retry(after: 3, error: Plain()) == nil, "no attempt left")
        #expect(all.retry(after: 1, error: HandlerFailure.final("no")) == nil)
        #expect(all.retry(after: 1, error: HandlerFailure.retryable("later", after: .seconds(7))) == .seconds(7))
        #expect(all.retry(after: 1, error: CancellationError()) == nil)
        let marked = try RetryPolicy(maxAttempts: 3, failures: .retryableOnly)
        #expect(marked.retry(after: 1, error: Plain()) == nil)
        #expect(marked.retry(after: 1, error: HandlerFailure.retryable("later")) != nil)
    }

    @Test func aJobsRetryPolicyRoundTripsAndBadOnesAreMalformed() throws {
        let policy = try RetryPolicy(maxAttempts: 7, base: .milliseconds(250), factor: 1.5, cap: .seconds(9), jitter: 0.2, failures: .retryableOnly)
        let job = JobMessage(clientID: [1], jobID: [2], handler: "h", deadline: 0, attempt: 1, payload: [], retry: RetryOverride(policy))
        let decoded = try JobMessage.decode(job.encode())
        #expect(decoded.retry?.policy == policy)
        // Max attempts 0 in the field.
        var frames = job.encode()
        let at = frames[0].count - WireRetry.size
        frames[0][at] = 0
        #expect(throws: ProtocolViolation.self) { try JobMessage.decode(frames) }
        // An unknown tagged field after the options is skipped.
        var tagged = JobMessage(clientID: [1], jobID: [2], handler: "h", deadline: 0, attempt: 1, payload: [],
                                options: DispatchOptions(priority: 6, requires: [])).encode()
        tagged[0] += [0x7E, 0x02, 0xAA, 0xBB]
        #expect(try JobMessage.decode(tagged).retry == nil)
        // A job with a policy never rides in a JOBS.
        let plain = JobMessage(clientID: [1], jobID: [3], handler: "h", deadline: 0, attempt: 1, payload: [])
        let first = try #require(JobBatchWriter.firstMessage(of: [job, plain]))
        #expect(first.count == 1 && first.frames == job.encode())
    }

    // MARK: Progress

    @Test func progressIsCoalescedToTheLatestAndTheLastIsKeptForTheResult() throws {
        let board = ProgressBoard(wake: {})
        let start = Instant.current
        func update(_ n: UInt64) -> ProgressMessage {
            ProgressMessage(attempt: 1, clientID: [1], jobID: [2], completed: n, total: 100, detail: [])
        }
        for n in UInt64(1)...50 { board.report(update(n)) }
        #expect(board.due(at: start).updates.map(\.completed) == [50], "only the latest leaves")
        for n in UInt64(51)...60 { board.report(update(n)) }
        let early = board.due(at: start + .milliseconds(100))
        #expect(early.updates.isEmpty, "not again within the interval")
        #expect(early.next == start + ProgressBoard.interval)
        #expect(board.due(at: start + ProgressBoard.interval).updates.map(\.completed) == [60])
        board.report(update(61))
        let last = board.finish(clientID: [1], jobID: [2], attempt: 1, at: start + .milliseconds(300))
        #expect(last?.completed == 61, "the update not yet sent goes before the result")
        board.report(update(62))
        #expect(board.due(at: start + .seconds(1)).updates.isEmpty, "reports after the handler returned are dropped")
        _ = board.due(at: start + .seconds(20))
        #expect(board.isEmpty, "finished jobs are forgotten")
    }

    @Test func progressDetailOverTheLimitIsMalformed() {
        let frames = ProgressMessage(attempt: 1, clientID: [1], jobID: [2], completed: 1, total: 2,
                                     detail: Array(repeating: 0, count: ProgressMessage.maxDetail + 1)).encode()
        #expect(throws: ProtocolViolation(.range, "a detail of 4097 bytes")) { try ProgressMessage.decode(frames) }
    }

    // MARK: Broker

    private func broker() -> BrokerState {
        var config = Topology.Broker.loopback(port: 5899)
        config.maxAttempts = 3
        return BrokerState(config: config, expiry: .seconds(60))
    }

    /// A broker whose worker `0xA` (one slot) runs job 1 of client `0xC1`.
    private func brokerRunningJobOne() -> (BrokerState, Instant) {
        var state = broker()
        let now = Instant.current
        _ = state.submit(job(1), from: [0xC1], now: now)
        _ = state.ready(ReadyMessage(workerID: [0xA], concurrency: 1), from: [0xA], now: now)
        return (state, now)
    }

    private func job(_ n: UInt8) -> JobMessage {
        JobMessage(clientID: [0xC1], jobID: [n], handler: "h", deadline: 0, attempt: 1, payload: [n])
    }

    private func results(_ outputs: ArraySlice<BrokerOutput>) -> [ResultMessage] {
        outputs.compactMap { if case .toClient(_, let result) = $0 { result } else { nil } }
    }

    private func jobs(_ outputs: ArraySlice<BrokerOutput>) -> [JobMessage] {
        outputs.compactMap { if case .toWorker(_, let job) = $0 { job } else { nil } }
    }

    @Test func theBrokerEndsAQueuedJobOnCancelAndForwardsOneForARunningJob() {
        var state = broker()
        let now = Instant.current
        _ = state.submit(job(1), from: [0xC1], now: now)
        _ = state.submit(job(2), from: [0xC1], now: now)
        let sent = jobs(state.ready(ReadyMessage(workerID: [0xA], concurrency: 1), from: [0xA], now: now))
        #expect(sent.map(\.jobID) == [[1]])
        #expect(state.cancel(CancelMessage(clientID: [0xC1], jobID: [2]), from: [0xC1], now: now) == nil, "queued: ended here")
        #expect(state.cancel(CancelMessage(clientID: [0xC1], jobID: [1]), from: [0xC1], now: now) == [0xA], "running: forwarded")
        #expect(state.cancel(CancelMessage(clientID: [0xC2], jobID: [1]), from: [0xC2], now: now) == nil, "another client's job")
        // Whatever the worker answers, the job ends cancelled.
        let ended = results(state.result(ResultMessage(status: .ok, attempt: 1, clientID: [0xC1], jobID: [1], body: []), from: [0xA], now: now))
        #expect(ended.map(\.status) == [.cancelled])
        #expect(state.stats.jobs == 0)
    }

    @Test func theBrokerHoldsARetryForItsDelayThenRunsTheNextAttempt() {
        var (state, now) = brokerRunningJobOne()
        let answer = ResultMessage(status: .retry, attempt: 1, clientID: [0xC1], jobID: [1],
                                   body: RetryAnswer(delay: .milliseconds(500), message: Array("later".utf8)).encode())
        let out = state.result(answer, from: [0xA], now: now)
        #expect(results(out).isEmpty && jobs(out).isEmpty, "held, not answered, not dispatched")
        #expect(state.nextRetry == now + .milliseconds(500))
        #expect(jobs(state.tick(now: now + .milliseconds(400))).isEmpty)
        let again = jobs(state.tick(now: now + .milliseconds(500)))
        #expect(again.map(\.attempt) == [2])
        #expect(state.stats.retried == 1)
    }

    private func destinations(_ outputs: ArraySlice<BrokerOutput>) -> [[UInt8]] {
        outputs.compactMap { if case .toWorker(let worker, _) = $0 { worker } else { nil } }
    }

    private func retryAnswer(for jobID: UInt8) -> ResultMessage {
        ResultMessage(status: .retry, attempt: 1, clientID: [0xC1], jobID: [jobID],
                      body: RetryAnswer(delay: .milliseconds(100), message: Array("later".utf8)).encode())
    }

    @Test func aRetryGoesToAnotherWorkerWithRoomThanTheOneThatFailed() {
        var state = broker()
        let now = Instant.current
        _ = state.submit(job(1), from: [0xC1], now: now)
        #expect(destinations(state.ready(ReadyMessage(workerID: [0xA], concurrency: 4), from: [0xA], now: now)) == [[0xA]])
        _ = state.ready(ReadyMessage(workerID: [0xB], concurrency: 1), from: [0xB], now: now)
        _ = state.result(retryAnswer(for: 1), from: [0xA], now: now)
        // A has four free slots and B one: without the preference the retry would go to A.
        let again = state.tick(now: now + .milliseconds(100))
        #expect(destinations(again) == [[0xB]])
        #expect(jobs(again).map(\.attempt) == [2])
        #expect(state.stats.retriedElsewhere == 1)
        // B's answer ends it; A's stale one for attempt 1 would not.
        let ended = results(state.result(ResultMessage(status: .ok, attempt: 2, clientID: [0xC1], jobID: [1], body: [7]), from: [0xB], now: now))
        #expect(ended.map(\.status) == [.ok])
    }

    @Test func aRetryRunsOnTheWorkerThatFailedWhenNoOtherHasRoom() {
        var state = broker()
        let now = Instant.current
        _ = state.ready(ReadyMessage(workerID: [0xB], concurrency: 1), from: [0xB], now: now)
        #expect(destinations(state.submit(job(2), from: [0xC1], now: now)) == [[0xB]])
        _ = state.submit(job(1), from: [0xC1], now: now)
        #expect(destinations(state.ready(ReadyMessage(workerID: [0xA], concurrency: 4), from: [0xA], now: now)) == [[0xA]])
        _ = state.result(retryAnswer(for: 1), from: [0xA], now: now)
        let again = state.tick(now: now + .milliseconds(100))
        #expect(destinations(again) == [[0xA]], "B's one slot is taken by job 2")
        #expect(state.stats.retriedElsewhere == 0)
    }

    @Test func aJobWaitingForItsRetryEndsOnCancel() {
        var (state, now) = brokerRunningJobOne()
        _ = state.result(ResultMessage(status: .retry, attempt: 1, clientID: [0xC1], jobID: [1],
                                       body: RetryAnswer(delay: .seconds(5), message: []).encode()), from: [0xA], now: now)
        #expect(state.cancel(CancelMessage(clientID: [0xC1], jobID: [1]), from: [0xC1], now: now) == nil)
        #expect(state.nextRetry == nil)
        #expect(jobs(state.tick(now: now + .seconds(6))).isEmpty, "never runs again")
    }

    @Test func theBrokerForwardsProgressOnlyForTheCurrentAttempt() {
        var (state, _) = brokerRunningJobOne()
        let current = ProgressMessage(attempt: 1, clientID: [0xC1], jobID: [1], completed: 1, total: 2, detail: [])
        let fromRunner = state.progressIsCurrent(current, from: [0xA])
        #expect(fromRunner)
        var stale = current
        stale.attempt = 2
        let staleAccepted = state.progressIsCurrent(stale, from: [0xA])
        #expect(!staleAccepted)
        let fromOther = state.progressIsCurrent(current, from: [0xB])
        #expect(!fromOther, "from a worker that does not run it")
    }
}

/// Cancels that arrive while a runner is taking a job, and those that cross the job's answer.
struct CancelOnArrivalTests {
    @Test func aRunnerFindsTheCancelOnceAndStaleOnesAreForgotten() {
        let running = RunningJobs(runners: 1)
        let now = Instant.current
        running.cancelOnArrival(clientID: [1], jobID: [2], at: now)
        #expect(running.takeCancelOnArrival(clientID: [1], jobID: [2]))
        #expect(!running.takeCancelOnArrival(clientID: [1], jobID: [2]), "taken once")
        // A CANCEL that crossed the job's answer: the job's end forgets it...
        running.cancelOnArrival(clientID: [1], jobID: [3], at: now)
        running.jobEnded(clientID: [1], jobID: [3])
        #expect(!running.takeCancelOnArrival(clientID: [1], jobID: [3]))
        // ...and one whose job had already ended goes after `earlyRetention`.
        running.cancelOnArrival(clientID: [1], jobID: [4], at: now)
        running.forgetEarly(before: now + RunningJobs.earlyRetention + .milliseconds(1))
        #expect(!running.takeCancelOnArrival(clientID: [1], jobID: [4]))
    }
}

/// In a secure mesh a worker takes a CANCEL only from the key that owns the job's client id.
struct SecureCancelTests {
    @Test func aWorkerIgnoresACancelFromAnotherKey() async throws {
        let owner = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let clientID = try #require(Z85.decode(owner.publicKey)) + [1, 2, 3, 4, 5, 6, 7, 8]
        var handlers = Handlers()
        try handlers.register("wait") { job in
            try await Task.sleep(for: .seconds(30))
            return job.payload
        }
        let runner = JobRunner(handlers: handlers, concurrency: 1, limit: 1 << 20, signal: try Signal(), executionLog: nil,
                               checksSender: true, published: Shared(WorkerStats()), logger: Logger(label: "secure-cancel"))
        let job = JobMessage(clientID: clientID, jobID: [7], handler: "wait", deadline: 0, attempt: 1, payload: [])
        runner.accept(job.encode(), declining: false, sender: owner.publicKey)
        runner.startAccepted()
        #expect(runner.inFlight == 1)
        try await Task.sleep(for: .milliseconds(100))  // a runner takes it (either way the owner's CANCEL ends it)
        let cancel = CancelMessage(clientID: clientID, jobID: [7]).encode()
        runner.cancel(cancel, sender: stranger.publicKey)
        #expect(runner.stats.malformed == 1 && runner.stats.cancelled == 0, "another key's CANCEL is dropped")
        runner.cancel(cancel, sender: owner.publicKey)
        try await eventually("the owner's CANCEL ends it") {
            runner.collectCompletions()
            return runner.inFlight == 0
        }
        #expect(runner.stats.cancelled == 1)
        runner.close()
    }
}
