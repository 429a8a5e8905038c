import Testing
@testable import TaskMesh

// The broker's routing (Broker/BrokerQueues.swift, BrokerRouting.swift): a worker gets only jobs
// whose handler it serves and whose labels it carries; jobs no worker can run wait, then end
// `unroutable`; priorities with aging; round robin across clients. No sockets and no sleeping:
// every call gets an instant built from one `Instant.current`.

/// A `BrokerState` with names for routing ids, jobs and what it sent.
private struct RoutingBroker {
    let t0 = Instant.current
    var state: BrokerState
    /// Jobs numbered by the tests, by job id.
    private var counter = 0

    init(unroutableTimeout: Duration = .seconds(60), queueLimit: Int = 100_000, lease: Duration = .seconds(600)) {
        var config = Topology.Broker.loopback(port: 5811)
        config.unroutableTimeout = unroutableTimeout
        config.queueLimit = queueLimit
        config.lease = lease
        state = BrokerState(config: config, expiry: .seconds(3600))
    }

    /// What one call asked to send: jobs as (worker routing id, job), and outcomes.
    struct Sent {
        var jobs: [(worker: String, job: JobMessage)] = []
        var results: [ResultMessage] = []

        init(_ outputs: ArraySlice<BrokerOutput>) {
            for output in outputs {
                switch output {
                case .toWorker(let worker, let job): jobs.append((String(decoding: worker, as: UTF8.self), job))
                case .toClient(_, let result): results.append(result)
                }
            }
        }

        var handlers: [String] { jobs.map(\.job.handler) }
        var workers: [String] { jobs.map(\.worker) }
        var payloads: [String] { jobs.map { String(decoding: $0.job.payload, as: UTF8.self) } }
    }

    func at(_ offset: Duration) -> Instant { t0 + offset }

    /// READY from the connection `worker` (also its worker id).
    mutating func ready(_ worker: String, _ concurrency: UInt16, handlers: [String]?, labels: [String] = [],
                        at offset: Duration = .zero) -> Sent {
        let message = ReadyMessage(workerID: Array(worker.utf8), concurrency: concurrency,
                                   capabilities: Capabilities(handlers: handlers, labels: labels))
        return Sent(state.ready(message, from: Array(worker.utf8), now: at(offset)))
    }

    /// A new job of `handler` whose payload is `name` (or a number).
    mutating func job(_ handler: String, _ name: String? = nil, client: String = "client-a", priority: UInt8 = 5,
                      requires: [String] = [], deadline: UInt64 = 0) -> JobMessage {
        counter += 1
        let id = withUnsafeBytes(of: UInt64(counter).bigEndian) { Array($0) }
        return JobMessage(clientID: Array(client.utf8), jobID: id, handler: handler, deadline: deadline, attempt: 1,
                          payload: Array((name ?? "\(counter)").utf8), options: DispatchOptions(priority: priority, requires: requires))
    }

    mutating func submit(_ job: JobMessage, at offset: Duration = .zero) -> Sent {
        Sent(state.submit(job, from: job.clientID, now: at(offset)))
    }

    /// The worker's `ok` RESULT for `job` (attempt as dispatched).
    mutating func finish(_ job: JobMessage, by worker: String, at offset: Duration = .zero) -> Sent {
        let result = ResultMessage(status: .ok, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: [])
        return Sent(state.result(result, from: Array(worker.utf8), now: at(offset)))
    }

    mutating func tick(at offset: Duration) -> Sent {
        Sent(state.tick(now: at(offset)))
    }

    var queuedPayloads: [String] {
        let snapshot = state.snapshot
        return snapshot.queue.compactMap { key in
            state.jobs.slots.first { $0.phase == .queued && $0.message.jobID == key.jobID && $0.message.clientID == key.clientID }
                .map { String(decoding: $0.message.payload, as: UTF8.self) }
        }
    }
}

@Suite struct BrokerRoutingTests {
    // MARK: Capabilities

    @Test func aWorkerGetsOnlyJobsOfTheHandlersItServes() {
        var broker = RoutingBroker()
        _ = broker.ready("only-a", 10, handlers: ["a"])
        let a1 = broker.job("a"), b1 = broker.job("b"), a2 = broker.job("a")
        #expect(broker.submit(a1).workers == ["only-a"])
        #expect(broker.submit(b1).jobs.isEmpty, "no worker serves b")
        #expect(broker.submit(a2).workers == ["only-a"])
        #expect(broker.state.snapshot.queuedPerHandler == ["b": 1])

        let both = broker.ready("a-and-b", 10, handlers: ["a", "b"])
        #expect(both.workers == ["a-and-b"] && both.handlers == ["b"], "the b job goes at once to the worker that has b")
        let more = [broker.job("a"), broker.job("b"), broker.job("a")].flatMap { broker.submit($0).jobs }
        #expect(more.allSatisfy { $0.job.handler == "a" || $0.worker == "a-and-b" })
        #expect(more.count == 3)
    }

    @Test func aWorkerThatAdvertisedNothingRunsEveryJobThatRequiresNoLabel() {
        var broker = RoutingBroker()
        _ = broker.ready("legacy", 10, handlers: nil)
        #expect(broker.submit(broker.job("anything")).workers == ["legacy"])
        #expect(broker.submit(broker.job("else")).workers == ["legacy"])
        #expect(broker.submit(broker.job("render", requires: ["gpu"])).jobs.isEmpty)
        #expect(broker.state.stats.queued == 1)
    }

    @Test func aJobThatRequiresALabelGoesOnlyToAWorkerCarryingIt() {
        var broker = RoutingBroker()
        _ = broker.ready("cpu-box", 10, handlers: ["render"], labels: ["cpu"])
        #expect(broker.submit(broker.job("render", requires: ["gpu"])).jobs.isEmpty)
        #expect(broker.submit(broker.job("render")).workers == ["cpu-box"], "a job requiring nothing may go anywhere")
        let gpu = broker.ready("gpu-box", 1, handlers: ["render"], labels: ["gpu", "ssd"])
        #expect(gpu.workers == ["gpu-box"])
        #expect(broker.submit(broker.job("render", requires: ["gpu", "ssd"])).jobs.isEmpty, "gpu-box is full; cpu-box lacks the labels")
        #expect(broker.submit(broker.job("render", requires: ["gpu", "tpu"])).jobs.isEmpty)
        #expect(broker.state.stats.queued == 2)
    }

    @Test func creditIsPerWorkerNotPerHandler() {
        var broker = RoutingBroker()
        _ = broker.ready("w", 2, handlers: ["a", "b"])
        var dispatched: [JobMessage] = []
        for handler in ["a", "b", "a", "b", "a", "b"] { dispatched += broker.submit(broker.job(handler)).jobs.map(\.job) }
        #expect(dispatched.count == 2)
        #expect(broker.state.snapshot.workers[Array("w".utf8)]?.running.count == 2)
        let next = broker.finish(dispatched[0], by: "w")
        #expect(next.jobs.count == 1)
        #expect(broker.state.snapshot.workers[Array("w".utf8)]?.free == 0)
    }

    /// The worker with the most free slots is passed over when it can run nothing queued.
    @Test func aWorkerThatCanRunNothingQueuedDoesNotHoldUpOthers() {
        var broker = RoutingBroker()
        _ = broker.ready("big", 10, handlers: ["x"])
        _ = broker.ready("small", 1, handlers: ["y"])
        #expect(broker.submit(broker.job("y")).workers == ["small"])
        #expect(broker.submit(broker.job("y")).jobs.isEmpty)
        #expect(broker.submit(broker.job("x")).workers == ["big"])
    }

    @Test func readyAgainWithOtherHandlersChangesWhatTheWorkerGets() {
        var broker = RoutingBroker()
        _ = broker.ready("w", 10, handlers: ["a"])
        let b = broker.job("b")
        #expect(broker.submit(b).jobs.isEmpty)
        let readvertised = broker.ready("w", 10, handlers: ["a", "b"])
        #expect(readvertised.handlers == ["b"])
        #expect(broker.state.snapshot.workers[Array("w".utf8)]?.capabilities.handlers == ["a", "b"])
        _ = broker.ready("w", 10, handlers: ["b"])
        #expect(broker.submit(broker.job("a")).jobs.isEmpty, "a was withdrawn")
        #expect(broker.submit(broker.job("b")).workers == ["w"])
        // What it already ran stays with it.
        #expect(broker.state.snapshot.workers[Array("w".utf8)]?.running.count == 2)
        #expect(broker.finish(b, by: "w").results.count == 1)
    }

    /// A worker that dropped a handler answers `unknownHandler` for the jobs of it already on
    /// their way: those never ran, so they go to a worker that has it, same attempt.
    @Test func jobsAnsweredUnknownHandlerAfterTheWorkerDroppedItGoElsewhere() {
        var broker = RoutingBroker()
        _ = broker.ready("old", 4, handlers: ["a"])
        let a = broker.job("a")
        #expect(broker.submit(a).workers == ["old"])
        _ = broker.ready("old", 4, handlers: [])  // it dropped "a" while the job was on its way
        _ = broker.ready("new", 4, handlers: ["a"])
        let answer = ResultMessage(status: .unknownHandler, attempt: 1, clientID: a.clientID, jobID: a.jobID, body: Array("a".utf8))
        let after = RoutingBroker.Sent(broker.state.result(answer, from: Array("old".utf8), now: broker.t0))
        #expect(after.results.isEmpty, "not ended")
        #expect(after.workers == ["new"] && after.jobs.first?.job.attempt == 1)
        #expect(broker.state.stats.rerouted == 1)
        // A worker that still lists the handler and answers unknownHandler ends the job: it is
        // not bounced between workers.
        let b = broker.job("a")
        let sent = broker.submit(b)
        let to = sent.workers.first ?? ""
        let final = ResultMessage(status: .unknownHandler, attempt: 1, clientID: b.clientID, jobID: b.jobID, body: Array("a".utf8))
        #expect(RoutingBroker.Sent(broker.state.result(final, from: Array(to.utf8), now: broker.t0)).results.count == 1)
    }

    // MARK: Jobs no live worker can run

    @Test func anUnroutableJobWaitsAndGoesAtOnceToAWorkerThatJoins() {
        var broker = RoutingBroker()
        _ = broker.ready("echo-box", 4, handlers: ["echo"])
        let resize = broker.job("resize")
        #expect(broker.submit(resize).jobs.isEmpty)
        #expect(broker.tick(at: .seconds(30)).results.isEmpty, "it waits")
        let joined = broker.ready("resize-box", 1, handlers: ["resize"], at: .seconds(31))
        #expect(joined.workers == ["resize-box"])
        #expect(joined.jobs.first?.job.jobID == resize.jobID)
        #expect(broker.tick(at: .seconds(120)).results.isEmpty)
    }

    @Test func anUnroutableJobEndsAfterTheTimeoutNamingWhatIsMissing() throws {
        var broker = RoutingBroker(unroutableTimeout: .seconds(60))
        _ = broker.ready("w1", 4, handlers: ["echo", "sha256"])
        _ = broker.ready("w2", 4, handlers: ["echo"], labels: ["cpu"])
        let resize = broker.job("resize", requires: ["gpu"])
        _ = broker.submit(resize, at: .seconds(1))
        #expect(broker.tick(at: .seconds(61) - .milliseconds(1)).results.isEmpty)
        let ended = broker.tick(at: .seconds(61))
        let result = try #require(ended.results.first)
        #expect(ended.results.count == 1)
        #expect(result.status == .unroutable)
        #expect(result.attempt == 1)
        #expect(result.jobID == resize.jobID)
        let body = String(decoding: result.body, as: UTF8.self)
        #expect(body.hasPrefix("for 1m, ") && body.contains("\"resize\""), "\(body)")
        #expect(body.contains("gpu") && body.contains("echo, sha256"), "\(body)")
        #expect(broker.state.stats.unroutable == 1)
        #expect(broker.state.stats.queued == 0)
        #expect(broker.state.snapshot.jobs.isEmpty)
        // The outcome is cached like any other.
        #expect(broker.submit(resize, at: .seconds(62)).results.map(\.status) == [.unroutable])
    }

    @Test func anUnroutableJobEndsWhenItsDeadlinePasses() throws {
        var broker = RoutingBroker()
        let late = broker.job("resize", deadline: WireDeadline.relative(.seconds(2)))  // 2 s left when submitted at t0
        let timeless = broker.job("resize")
        _ = broker.submit(late)
        _ = broker.submit(timeless)
        #expect(broker.tick(at: .seconds(2) - .milliseconds(1)).results.isEmpty)
        let ended = broker.tick(at: .seconds(2))
        #expect(ended.results.map(\.jobID) == [late.jobID])
        #expect(ended.results.first?.status == .unroutable)
        let body = String(decoding: try #require(ended.results.first).body, as: UTF8.self)
        #expect(body.hasPrefix("before the deadline, ") && body.contains("\"resize\""), "\(body)")
        #expect(broker.state.stats.queued == 1)
    }

    /// A job whose last capable worker leaves waits the whole timeout from then, not from its
    /// submission, and ends with its current attempt.
    @Test func theUnroutableTimeoutCountsFromWhenTheLastCapableWorkerLeft() throws {
        var broker = RoutingBroker(unroutableTimeout: .seconds(60))
        _ = broker.ready("resizer", 1, handlers: ["resize"])
        _ = broker.ready("echoer", 1, handlers: ["echo"])
        let resize = broker.job("resize")
        #expect(broker.submit(resize).workers == ["resizer"])
        let left = RoutingBroker.Sent(broker.state.disconnect(from: Array("resizer".utf8), now: broker.at(.seconds(100))))
        #expect(left.jobs.isEmpty && left.results.isEmpty)
        #expect(broker.tick(at: .seconds(160) - .milliseconds(1)).results.isEmpty)
        let ended = broker.tick(at: .seconds(160))
        #expect(ended.results.map(\.status) == [.unroutable])
        #expect(ended.results.first?.attempt == 2)
    }

    /// A worker that said BYE no longer counts as able to run a job.
    @Test func aDrainingWorkerDoesNotKeepAJobRoutable() {
        var broker = RoutingBroker(unroutableTimeout: .seconds(10))
        _ = broker.ready("w", 1, handlers: ["a"])
        let first = broker.job("a")
        _ = broker.submit(first)
        _ = broker.submit(broker.job("a"))
        broker.state.bye(from: Array("w".utf8), now: broker.at(.seconds(5)))
        #expect(broker.tick(at: .seconds(15) - .milliseconds(1)).results.isEmpty)
        #expect(broker.tick(at: .seconds(15)).results.map(\.status) == [.unroutable])
        #expect(broker.finish(first, by: "w", at: .seconds(16)).results.map(\.status) == [.ok])
    }

    // MARK: Priorities

    @Test func higherPrioritiesGoFirstAndOnePriorityIsFirstComeFirstServed() {
        var broker = RoutingBroker()
        _ = broker.ready("w", 1, handlers: nil)
        var running = broker.submit(broker.job("h", "blocker")).jobs.map(\.job)
        for (name, priority) in [("low-1", 3), ("high-1", 7), ("default-1", 5), ("high-2", 7), ("low-2", 3), ("default-2", 5)] {
            _ = broker.submit(broker.job(name.hasPrefix("d") ? "other" : "h", name, priority: UInt8(priority)))
        }
        #expect(broker.queuedPayloads == ["high-1", "high-2", "default-1", "default-2", "low-1", "low-2"])
        var order: [String] = []
        while let current = running.first {
            let next = broker.finish(current, by: "w")
            order += next.payloads
            running = next.jobs.map(\.job)
        }
        #expect(order == ["high-1", "high-2", "default-1", "default-2", "low-1", "low-2"])
    }

    /// Behind a constant stream of priority 9 jobs, a job of priority p is dispatched once it
    /// waited 9 - p seconds: its priority's standing has then risen to 9.
    @Test(arguments: [1, 5, 8] as [UInt8])
    func agingLetsALowPriorityJobThroughAStreamOfHighOnes(priority: UInt8) throws {
        var broker = RoutingBroker()
        _ = broker.ready("w", 1, handlers: ["h"])
        var running = try #require(broker.submit(broker.job("h", "high", priority: 9)).jobs.first?.job)
        for _ in 0..<3 { _ = broker.submit(broker.job("h", "high", priority: 9)) }
        _ = broker.submit(broker.job("h", "low", client: "client-b", priority: priority))
        var dispatchedAt: Duration?
        var now = Duration.zero
        while dispatchedAt == nil && now < .seconds(20) {
            now += .milliseconds(100)
            _ = broker.submit(broker.job("h", "high", priority: 9), at: now)
            let next = broker.finish(running, by: "w", at: now)
            running = try #require(next.jobs.first?.job)
            if next.payloads == ["low"] { dispatchedAt = now }
        }
        let waited = try #require(dispatchedAt)
        let expected = Duration.seconds(9 - Int(priority))
        #expect(waited >= expected && waited <= expected + .milliseconds(100), "dispatched after \(waited)")
    }

    // MARK: Fairness

    @Test func aClientWithAFewJobsIsNotStarvedByOneThatFloods() {
        var broker = RoutingBroker()
        _ = broker.ready("w", 1, handlers: ["h"])
        var running: [JobMessage] = []
        broker.state.beginBatch()
        for _ in 0..<10_000 { _ = broker.submit(broker.job("h", "a", client: "client-a")) }
        for _ in 0..<10 { _ = broker.submit(broker.job("h", "b", client: "client-b")) }
        running = RoutingBroker.Sent(broker.state.endBatch(now: broker.t0)).jobs.map(\.job)
        var order: [String] = running.map { String(decoding: $0.payload, as: UTF8.self) }
        while order.count < 30, let current = running.first {
            let next = broker.finish(current, by: "w")
            order += next.payloads
            running = next.jobs.map(\.job)
        }
        let lastB = order.lastIndex(of: "b") ?? .max
        #expect(order.filter { $0 == "b" }.count == 10)
        #expect(lastB < 21, "\(order)")
    }

    @Test func roomForSeveralJobsIsSharedOneJobPerClientInTurn() {
        var broker = RoutingBroker()
        broker.state.beginBatch()
        for client in ["a", "b", "c"] {
            for n in 1...3 { _ = broker.submit(broker.job("h", "\(client)\(n)", client: "client-\(client)")) }
        }
        _ = broker.submit(broker.job("h", "urgent", client: "client-c", priority: 9))
        _ = broker.ready("w", 6, handlers: ["h"])
        let sent = RoutingBroker.Sent(broker.state.endBatch(now: broker.t0))
        #expect(sent.payloads == ["urgent", "a1", "b1", "c1", "a2", "b2"])
    }

    /// Aging does not undo fairness: a flood's old backlog and a newcomer's fresh jobs are of
    /// one priority, so they still take turns.
    @Test func aNewcomerTakesTurnsWithAnOldBacklogOfTheSamePriority() throws {
        var broker = RoutingBroker()
        _ = broker.ready("w", 1, handlers: ["h"])
        var running = try #require(broker.submit(broker.job("h", "a", client: "client-a")).jobs.first?.job)
        for _ in 0..<5_000 { _ = broker.submit(broker.job("h", "a", client: "client-a")) }
        var now = Duration.seconds(10)
        var waits: [Int] = []
        for _ in 0..<20 {  // client B: one job at a time, the next once the last was dispatched
            _ = broker.submit(broker.job("h", "b", client: "client-b"), at: now)
            var dispatches = 0
            while true {
                now += .milliseconds(10)
                let next = broker.finish(running, by: "w", at: now)
                running = try #require(next.jobs.first?.job)
                dispatches += 1
                if next.payloads == ["b"] { break }
            }
            waits.append(dispatches)
        }
        #expect(waits.allSatisfy { $0 <= 2 }, "\(waits)")
    }

    /// A requeued job goes back to the front of its own lane, and its lane first in the round.
    @Test func aRequeuedJobIsTheNextOfItsPriority() {
        var broker = RoutingBroker()
        _ = broker.ready("leaving", 1, handlers: ["h"])
        let first = broker.job("h", "first", client: "client-a")
        _ = broker.submit(first)
        for name in ["a2", "a3"] { _ = broker.submit(broker.job("h", name, client: "client-a")) }
        for name in ["b1", "b2"] { _ = broker.submit(broker.job("h", name, client: "client-b")) }
        _ = broker.state.disconnect(from: Array("leaving".utf8), now: broker.t0)
        #expect(broker.queuedPayloads.first == "first")
        let next = broker.ready("staying", 2, handlers: ["h"])
        #expect(next.payloads == ["first", "b1"])
        #expect(next.jobs.first?.job.attempt == 2)
    }
}
