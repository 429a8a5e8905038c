import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// The broker's CANCEL, retry and progress bookkeeping.
struct BrokerLifecycleTests {
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
