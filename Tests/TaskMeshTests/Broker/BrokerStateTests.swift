import Testing
@testable import TaskMesh

// The reliable-mode broker's bookkeeping (Broker/BrokerState.swift): queueing and credit-based
// dispatch, attempts and leases, workers that leave, hang or go silent, deduplication and the
// outcome cache. No sockets and no sleeping: every call gets an instant built from one
// `Instant.current`. The last test drives the state with a seeded random model and checks its
// invariants after every step.

private let clientA: [UInt8] = Array("client-a".utf8)
private let clientB: [UInt8] = Array("client-b".utf8)

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Job `n` of `client`: a one-byte job id, a handler and payload that tell jobs apart.
private func job(_ n: Int, client: [UInt8] = clientA) -> JobMessage {
    JobMessage(clientID: client, jobID: [UInt8(n)], handler: "handler-\(n)", deadline: 0, attempt: 1,
               payload: [UInt8(n), 0xAB])
}

private func key(_ n: Int, client: [UInt8] = clientA) -> JobKey {
    JobKey(clientID: client, jobID: [UInt8(n)])
}

/// `message` as a worker receives it for `attempt`.
private func attempt(_ attempt: UInt16, of message: JobMessage) -> JobMessage {
    var copy = message
    copy.attempt = attempt
    return copy
}

private func readyMessage(_ workerID: String, _ concurrency: UInt16) -> ReadyMessage {
    ReadyMessage(workerID: bytes(workerID), concurrency: concurrency)
}

/// A worker's RESULT for `message`'s job.
private func resultMessage(for message: JobMessage, attempt: UInt16, status: ResultStatus = .ok,
                           body: String = "done") -> ResultMessage {
    ResultMessage(status: status, attempt: attempt, clientID: message.clientID, jobID: message.jobID, body: bytes(body))
}

private func brokerConfig(maxAttempts: Int = 3, lease: Duration = .seconds(30), queueLimit: Int = 100,
                          resultTTL: Duration = .seconds(300)) -> Topology.Broker {
    var config = Topology.Broker.loopback(port: 5801)
    config.maxAttempts = maxAttempts
    config.lease = lease
    config.queueLimit = queueLimit
    config.resultTTL = resultTTL
    return config
}

/// What one call asked the loop to send, decoded.
private struct Sent {
    var jobs: [(worker: [UInt8], job: JobMessage)] = []
    var results: [(client: [UInt8], result: ResultMessage)] = []

    init(_ outputs: ArraySlice<BrokerOutput>) throws {
        for output in outputs {
            switch output {
            case .toWorker(let worker, let job): jobs.append((worker, job))
            case .toClient(let client, let result): results.append((client, result))
            }
        }
    }

    var isEmpty: Bool { jobs.isEmpty && results.isEmpty }
}

@Suite struct BrokerStateTests {
    let t0 = Instant.current

    // Routing ids of worker connections.
    let small = bytes("route-small")
    let big = bytes("route-big")
    let w1 = bytes("route-1")
    let w2 = bytes("route-2")

    // MARK: Queueing and dispatch

    @Test func jobsGoToTheWorkerWithTheMostFreeSlots() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("small", 1), from: small, now: t0)
        _ = state.ready(readyMessage("big", 3), from: big, now: t0)

        var targets: [[UInt8]] = []
        for n in 1...5 {
            let sent = try Sent(state.submit(job(n), from: clientA, now: t0))
            #expect(sent.results.isEmpty)
            #expect(sent.jobs.allSatisfy { $0.job == job(n) })
            targets += sent.jobs.map(\.worker)
        }
        // Free slots decide, not turns: big (3 free) takes the first two; then both have one.
        #expect(Array(targets.prefix(2)) == [big, big])
        #expect(targets.count == 4)
        #expect(targets.filter { $0 == big }.count == 3)
        #expect(targets.filter { $0 == small }.count == 1)
        #expect(state.snapshot.workers[small]?.running.count == 1)
        #expect(state.snapshot.workers[big]?.running.count == 3)
        #expect(Array(state.snapshot.queue) == [key(5)])
        #expect(state.stats.accepted == 5)
        #expect(state.stats.dispatched == 4)
        #expect(state.stats.jobs == 5)
        #expect(state.stats.queued == 1)
        #expect(state.stats.workers == 2)
    }

    /// Within a batch (one JOBS, or one wake-up of the loop) dispatch waits for the batch's
    /// end and then hands jobs out in runs, by the same rule: each job to the worker with the
    /// most free slots at that moment.
    @Test func aBatchIsDispatchedAtItsEndByTheSameRule() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("first", 3), from: w1, now: t0)
        _ = state.ready(readyMessage("second", 3), from: w2, now: t0)
        state.beginBatch()
        for n in 1...4 {
            let sent = try Sent(state.submit(job(n), from: clientA, now: t0))
            #expect(sent.isEmpty, "nothing is dispatched inside the batch")
        }
        let dispatched = try Sent(state.endBatch(now: t0))
        #expect(dispatched.jobs.map(\.job.jobID) == [[1], [2], [3], [4]], "in queue order")
        #expect(dispatched.jobs.filter { $0.worker == w1 }.count == 2, "equal free slots share the batch")
        #expect(dispatched.jobs.filter { $0.worker == w2 }.count == 2)

        // 4 and 2 free: two jobs to the bigger, then one each, whichever of equals goes first.
        var unequal = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = unequal.ready(readyMessage("big", 4), from: big, now: t0)
        _ = unequal.ready(readyMessage("small", 2), from: small, now: t0)
        unequal.beginBatch()
        for n in 1...4 { _ = unequal.submit(job(n), from: clientA, now: t0) }
        let runs = try Sent(unequal.endBatch(now: t0))
        #expect(runs.jobs.count == 4)
        #expect(runs.jobs.filter { $0.worker == big }.count == 3)
        #expect(runs.jobs.filter { $0.worker == small }.count == 1)
    }

    @Test func aWorkerNeverHoldsMoreJobsThanItsConcurrency() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("one", 1), from: w1, now: t0)
        var dispatched = 0
        for n in 1...3 {
            dispatched += try Sent(state.submit(job(n), from: clientA, now: t0)).jobs.count
        }
        #expect(dispatched == 1)
        #expect(state.snapshot.workers[w1]?.running == [key(1)])
        #expect(state.snapshot.workers[w1]?.free == 0)
        #expect(Array(state.snapshot.queue) == [key(2), key(3)])

        // READY again (same connection, same credit) does not add room.
        let again = try Sent(state.ready(readyMessage("one", 1), from: w1, now: t0))
        #expect(again.isEmpty)
        #expect(state.snapshot.workers[w1]?.running.count == 1)
    }

    @Test func nothingIsDispatchedBeforeAWorkerSaysReady() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        for n in 1...3 {
            let sent = try Sent(state.submit(job(n), from: clientA, now: t0))
            #expect(sent.isEmpty)
        }
        #expect(Array(state.snapshot.queue) == [key(1), key(2), key(3)])
        #expect(state.stats.dispatched == 0)

        let sent = try Sent(state.ready(readyMessage("w", 2), from: w1, now: t0 + .seconds(1)))
        #expect(sent.jobs.map(\.worker) == [w1, w1])
        #expect(sent.jobs.map(\.job) == [job(1), job(2)])  // in the order submitted, attempt 1
        #expect(Array(state.snapshot.queue) == [key(3)])
        #expect(state.snapshot.jobs[key(1)]?.leaseUntil == t0 + .seconds(1) + .seconds(30))
        #expect(state.snapshot.jobs[key(3)]?.worker == nil)
    }

    @Test func aClientCannotSubmitUnderAnotherClientsID() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("w", 2), from: w1, now: t0)
        let sent = try Sent(state.submit(job(1, client: clientA), from: clientB, now: t0))
        #expect(sent.isEmpty)
        #expect(state.stats.malformed == 1)
        #expect(state.stats.accepted == 0)
        #expect(state.snapshot.jobs.isEmpty)
        #expect(state.snapshot.queue.isEmpty)
    }

    @Test func jobIDsAreNamespacedByClient() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("w", 2), from: w1, now: t0)
        let a = try Sent(state.submit(job(1, client: clientA), from: clientA, now: t0))
        let b = try Sent(state.submit(job(1, client: clientB), from: clientB, now: t0))
        #expect(a.jobs.count == 1)
        #expect(b.jobs.count == 1)
        #expect(state.stats.duplicatesInFlight == 0)
        #expect(Set(state.snapshot.jobs.keys) == [key(1, client: clientA), key(1, client: clientB)])
    }

    // MARK: Deduplication and the outcome cache

    @Test func aDuplicateOfAQueuedOrRunningJobIsNotRunAgain() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("w", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)  // running
        _ = state.submit(job(2), from: clientA, now: t0)  // queued
        let runningAgain = try Sent(state.submit(job(1), from: clientA, now: t0 + .seconds(1)))
        let queuedAgain = try Sent(state.submit(job(2), from: clientA, now: t0 + .seconds(1)))
        #expect(runningAgain.isEmpty)
        #expect(queuedAgain.isEmpty)
        #expect(state.stats.duplicatesInFlight == 2)
        #expect(state.stats.accepted == 2)
        #expect(state.stats.dispatched == 1)
        #expect(Array(state.snapshot.queue) == [key(2)])
        #expect(state.snapshot.workers[w1]?.running == [key(1)])

        // Job 2 still runs exactly once once job 1 ends.
        let done = try Sent(state.result(resultMessage(for: job(1), attempt: 1), from: w1, now: t0 + .seconds(2)))
        #expect(done.jobs.map(\.job) == [job(2)])
        #expect(state.snapshot.queue.isEmpty)
    }

    @Test func aResubmissionOfAFinishedJobGetsTheCachedResult() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("w", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        let answer = resultMessage(for: job(1), attempt: 1, body: "forty-two")
        let outputs = state.result(answer, from: w1, now: t0 + .seconds(1))
        #expect(outputs == [.toClient(clientA, answer)])

        let again = state.submit(job(1), from: clientA, now: t0 + .seconds(2))
        #expect(again == [.toClient(clientA, answer)])  // the same RESULT, not a new run
        #expect(state.stats.duplicatesAnswered == 1)
        #expect(state.stats.accepted == 1)
        #expect(state.stats.dispatched == 1)
        #expect(state.snapshot.jobs.isEmpty)
        #expect(state.snapshot.workers[w1]?.running.isEmpty == true)
    }

    @Test func theCachedResultIsForgottenAfterResultTTL() throws {
        var state = BrokerState(config: brokerConfig(resultTTL: .seconds(10)), expiry: .seconds(600))
        _ = state.ready(readyMessage("w", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        let answer = resultMessage(for: job(1), attempt: 1)
        _ = state.result(answer, from: w1, now: t0 + .seconds(1))  // cached until t0 + 11 s

        _ = state.tick(now: t0 + .seconds(11) - .milliseconds(1))
        let stillCached = state.submit(job(1), from: clientA, now: t0 + .seconds(11))
        #expect(stillCached == [.toClient(clientA, answer)])
        #expect(state.stats.duplicatesAnswered == 1)

        _ = state.tick(now: t0 + .seconds(11))
        let rerun = try Sent(state.submit(job(1), from: clientA, now: t0 + .seconds(12)))
        #expect(rerun.results.isEmpty)
        #expect(rerun.jobs.map(\.job) == [job(1)])  // a new run, from attempt 1
        #expect(state.stats.accepted == 2)
        #expect(state.stats.duplicatesAnswered == 1)
    }

    /// A finished job gives up its slot at once while its outcome stays cached: jobs that run
    /// after it (in the slot it left) must not disturb the answers for it, and the cache holds
    /// each outcome under its own id until the count limit evicts the oldest.
    @Test func outcomesStayCachedWhileLaterJobsReuseTheirSlots() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(600), finishedLimit: 3)
        _ = state.ready(readyMessage("w", 1), from: w1, now: t0)
        var answers: [ResultMessage] = []
        for n in 1...4 {
            let sent = try Sent(state.submit(job(n), from: clientA, now: t0))
            #expect(sent.jobs.map(\.job) == [job(n)])
            answers.append(resultMessage(for: job(n), attempt: 1, body: "answer \(n)"))
            _ = state.result(answers[n - 1], from: w1, now: t0)
        }
        #expect(state.snapshot.jobs.isEmpty)
        for n in 2...4 {
            let again = state.submit(job(n), from: clientA, now: t0 + .seconds(1))
            #expect(again == [.toClient(clientA, answers[n - 1])], "job \(n)")
        }
        let evicted = try Sent(state.submit(job(1), from: clientA, now: t0 + .seconds(1)))
        #expect(evicted.jobs.map(\.job) == [job(1)], "the oldest of four outcomes was evicted: the job runs again")
        #expect(state.stats.duplicatesAnswered == 3)
    }

    @Test func theOutcomeCacheIsBoundedInBytes() throws {
        // Room for about two 1,000-byte results: the oldest is forgotten first.
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(600), finishedByteLimit: 2_200)
        _ = state.ready(readyMessage("w", 1), from: w1, now: t0)
        for n in 1...3 {
            _ = state.submit(job(n), from: clientA, now: t0)
            _ = state.result(resultMessage(for: job(n), attempt: 1, body: String(repeating: "x", count: 1_000)), from: w1, now: t0)
        }
        let first = try Sent(state.submit(job(1), from: clientA, now: t0 + .seconds(1)))
        #expect(first.jobs.map(\.job) == [job(1)], "the oldest outcome was evicted: the job runs again")
        _ = state.result(resultMessage(for: job(1), attempt: 1), from: w1, now: t0 + .seconds(1))
        let third = state.submit(job(3), from: clientA, now: t0 + .seconds(2))
        #expect(third.count == 1 && state.stats.duplicatesAnswered == 1, "the newest outcome is still cached")
    }

    @Test func aFullBrokerAnswersOverloadedAndDoesNotCacheIt() throws {
        var state = BrokerState(config: brokerConfig(queueLimit: 2), expiry: .seconds(3))
        _ = state.ready(readyMessage("w", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)  // running: counts toward the limit
        _ = state.submit(job(2), from: clientA, now: t0)  // queued
        let refused = try Sent(state.submit(job(3), from: clientA, now: t0))
        #expect(refused.jobs.isEmpty)
        #expect(refused.results.count == 1)
        let result = try #require(refused.results.first)
        #expect(result.client == clientA)
        #expect(result.result.status == .overloaded)
        #expect(result.result.jobID == [3])
        #expect(result.result.clientID == clientA)
        #expect(result.result.attempt == 0)
        #expect(String(decoding: result.result.body, as: UTF8.self).contains("queue_limit"))
        #expect(state.stats.rejectedOverloaded == 1)
        #expect(state.stats.accepted == 2)
        #expect(state.snapshot.jobs[key(3)] == nil)

        // Once there is room, the same id is accepted: a refusal is not an outcome.
        _ = state.result(resultMessage(for: job(1), attempt: 1), from: w1, now: t0 + .seconds(1))
        let accepted = try Sent(state.submit(job(3), from: clientA, now: t0 + .seconds(2)))
        #expect(accepted.isEmpty)  // queued behind job 2, which runs now
        #expect(state.stats.accepted == 3)
        #expect(Array(state.snapshot.queue) == [key(3)])
    }

    // MARK: Results

    @Test func aResultGoesToTheClientAndFreesTheSlotForTheNextJob() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("w", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)
        let answer = resultMessage(for: job(1), attempt: 1, status: .failed, body: "handler threw")
        let outputs = state.result(answer, from: w1, now: t0 + .seconds(1))
        #expect(outputs == [.toClient(clientA, answer), .toWorker(w1, job(2))])
        #expect(state.snapshot.workers[w1]?.running == [key(2)])
        #expect(state.snapshot.jobs[key(1)] == nil)
        #expect(state.snapshot.queue.isEmpty)
        #expect(state.stats.completed == 1)
        #expect(state.stats.dispatched == 2)
    }

    @Test func aResultOfASupersededAttemptIsDroppedAndFreesTheStuckSlot() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(10)), expiry: .seconds(600))
        _ = state.ready(readyMessage("first", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.ready(readyMessage("second", 1), from: w2, now: t0)

        // The lease runs out: attempt 2 goes to the other worker; the first keeps a stuck slot.
        let retried = try Sent(state.tick(now: t0 + .seconds(10)))
        #expect(retried.jobs.count == 1)
        #expect(retried.jobs.first?.worker == w2)
        #expect(retried.jobs.first?.job == attempt(2, of: job(1)))
        #expect(state.snapshot.workers[w1]?.stuck == 1)
        #expect(state.snapshot.workers[w1]?.free == 0)

        let late = try Sent(state.result(resultMessage(for: job(1), attempt: 1, body: "late"), from: w1, now: t0 + .seconds(11)))
        #expect(late.isEmpty)  // fenced off: the client does not get attempt 1's result
        #expect(state.stats.staleResults == 1)
        #expect(state.snapshot.workers[w1]?.stuck == 0)
        #expect(state.snapshot.workers[w1]?.free == 1)
        #expect(state.snapshot.jobs[key(1)]?.worker == w2)

        let current = resultMessage(for: job(1), attempt: 2, body: "current")
        let outputs = state.result(current, from: w2, now: t0 + .seconds(12))
        #expect(outputs == [.toClient(clientA, current)])
        #expect(state.stats.completed == 1)
    }

    @Test func aDeclinedJobGoesBackToTheFrontWithTheSameAttempt() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("leaving", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)
        state.bye(from: w1, now: t0)

        let declined = try Sent(state.result(resultMessage(for: job(1), attempt: 1, status: .declined), from: w1, now: t0))
        #expect(declined.isEmpty)  // no outcome, and the draining worker gets nothing
        #expect(Array(state.snapshot.queue) == [key(1), key(2)])  // ahead of the job that was waiting
        #expect(state.snapshot.jobs[key(1)]?.attempt == 1)
        #expect(state.snapshot.jobs[key(1)]?.worker == nil)
        #expect(state.snapshot.workers[w1]?.running.isEmpty == true)
        #expect(state.stats.requeued == 0)

        let taken = try Sent(state.ready(readyMessage("staying", 1), from: w2, now: t0))
        #expect(taken.jobs.map(\.worker) == [w2])
        #expect(taken.jobs.map(\.job) == [job(1)])  // still attempt 1: it never started
        #expect(Array(state.snapshot.queue) == [key(2)])
    }

    // MARK: Workers that go silent, hang, leave or reconnect

    @Test func aSilentWorkersJobsAreRetriedElsewhere() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(60)), expiry: .seconds(3))
        _ = state.ready(readyMessage("frozen", 2), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)
        _ = state.ready(readyMessage("alive", 2), from: w2, now: t0 + .seconds(1))
        let alive = state.heard(from: w2, now: t0 + .milliseconds(2500))
        #expect(alive)

        let atExpiry = try Sent(state.tick(now: t0 + .seconds(3)))  // silent for exactly the expiry
        #expect(atExpiry.isEmpty)
        #expect(state.snapshot.workers[w1] != nil)

        let retried = try Sent(state.tick(now: t0 + .seconds(3) + .milliseconds(1)))
        #expect(retried.results.isEmpty)
        #expect(retried.jobs.allSatisfy { $0.worker == w2 })
        #expect(Set(retried.jobs.map(\.job.jobID)) == [[1], [2]])
        #expect(retried.jobs.allSatisfy { $0.job.attempt == 2 })
        #expect(state.snapshot.workers[w1] == nil)
        #expect(state.snapshot.workers[w2]?.running == [key(1), key(2)])
        #expect(state.stats.workersLost == 1)
        #expect(state.stats.requeued == 2)

        // The lost worker's result, should it still arrive, is stale.
        let known = state.heard(from: w1, now: t0 + .seconds(4))
        #expect(!known)
        let late = try Sent(state.result(resultMessage(for: job(1), attempt: 1), from: w1, now: t0 + .seconds(4)))
        #expect(late.isEmpty)
        #expect(state.stats.staleResults == 1)
    }

    @Test func anOverrunLeaseKeepsTheWorkersSlotUntilItsLateResult() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(10)), expiry: .seconds(3))
        _ = state.ready(readyMessage("hung", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)

        var now = t0
        while now < t0 + .seconds(10) {  // the worker keeps heartbeating; only its handler hangs
            now += .seconds(1)
            _ = state.heard(from: w1, now: now)
            let sent = try Sent(state.tick(now: now))
            #expect(sent.isEmpty || now == t0 + .seconds(10))
        }
        #expect(state.stats.leasesExpired == 1)
        #expect(state.stats.requeued == 1)
        #expect(state.stats.workersLost == 0)
        #expect(state.snapshot.workers[w1]?.running.isEmpty == true)
        #expect(state.snapshot.workers[w1]?.stuck == 1)
        #expect(state.snapshot.workers[w1]?.free == 0)  // the hung handler still occupies it
        #expect(Array(state.snapshot.queue) == [key(1), key(2)])  // the retry goes first
        #expect(state.snapshot.jobs[key(1)]?.attempt == 2)

        let late = state.result(resultMessage(for: job(1), attempt: 1), from: w1, now: now)
        #expect(late == [.toWorker(w1, attempt(2, of: job(1)))])
        #expect(state.snapshot.workers[w1]?.stuck == 0)
        #expect(state.stats.staleResults == 1)
    }

    /// Two attempts the worker never got (lost with a connection it replaced): past their lease
    /// they still count against it until a heartbeat says it holds none, and the worker, its
    /// slots free again, gets their next attempts.
    @Test func aHeartbeatHoldingFewerJobsThanTheStuckSlotsFreesTheRest() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(10)), expiry: .seconds(600))
        _ = state.ready(readyMessage("reconnected", 2), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)
        _ = state.submit(job(3), from: clientA, now: t0)
        #expect(Set(state.snapshot.workers[w1]?.running ?? []) == [key(1), key(2)])

        let expired = try Sent(state.tick(now: t0 + .seconds(10)))
        #expect(expired.isEmpty)  // no slot is free: both count as stuck
        #expect(state.snapshot.workers[w1]?.stuck == 2)

        // A heartbeat that holds more than is stuck (say, the hung handlers themselves) frees nothing.
        #expect(state.workerHolds(2, from: w1, now: t0 + .seconds(11)) == 0)
        #expect(state.snapshot.workers[w1]?.free == 0)

        let freed = state.workerHolds(0, from: w1, now: t0 + .seconds(12))
        #expect(freed == 2)
        #expect(state.stats.slotsFreed == 2)
        #expect(state.snapshot.workers[w1]?.stuck == 0)
        // Its leases ran out, so it holds half its slots until it answers again: one job.
        let sent = try Sent(state.outbox[...])
        let first = try #require(sent.jobs.last)
        #expect(first.worker == w1 && first.job.attempt == 2 && [[1], [2]].contains(first.job.jobID))
        #expect(state.snapshot.workers[w1]?.running.count == 1)
        let after = try Sent(state.result(resultMessage(for: first.job, attempt: 2), from: w1, now: t0 + .seconds(13)))
        // Its answer earns the slot back: the other job's attempt 2 and job 3 go out.
        let other: [UInt8] = first.job.jobID == [1] ? [2] : [1]
        let expected: Set<[UInt16]> = [[2, UInt16(other[0])], [1, 3]]
        #expect(Set(after.jobs.map { [$0.job.attempt, UInt16($0.job.jobID[0])] }) == expected)

        // An unknown connection's report changes nothing.
        #expect(state.workerHolds(0, from: w2, now: t0 + .seconds(12)) == 0)
    }

    /// A worker holds at most the slots it has earned, whatever credit it claims: 64 at first,
    /// one more per answer, half of them after a wake-up in which its leases ran out.
    @Test func aWorkerEarnsItsSlotsByAnsweringAndLosesHalfAtAnOverrunLease() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(10), queueLimit: 1000), expiry: .seconds(600))
        _ = state.ready(readyMessage("greedy", 60000), from: w1, now: t0)
        for n in 0..<200 {
            _ = state.submit(JobMessage(clientID: clientA, jobID: [UInt8(n & 0xFF), UInt8(n >> 8)], handler: "h", deadline: 0, attempt: 1,
                                        payload: []), from: clientA, now: t0)
        }
        let first = state.snapshot.workers[w1]?.running ?? []
        #expect(first.count == BrokerState.initialWindow)
        // Each answer earns a slot: the worker now holds one more than before.
        let answered = try #require(first.first)
        _ = state.result(ResultMessage(status: .ok, attempt: 1, clientID: clientA, jobID: answered.jobID, body: []), from: w1, now: t0)
        #expect(state.snapshot.workers[w1]?.running.count == BrokerState.initialWindow + 1)

        // Every lease runs out in one wake-up: the window halves once, to 32 of its 65.
        _ = state.tick(now: t0 + .seconds(10))
        #expect(state.stats.leasesExpired == UInt64(BrokerState.initialWindow + 1) && state.stats.windowsHalved == 1)
        _ = state.workerHolds(0, from: w1, now: t0 + .seconds(11))  // it says it holds nothing
        #expect(state.snapshot.workers[w1]?.running.count == (BrokerState.initialWindow + 1) / 2)
    }

    /// The next attempt of a job whose lease ran out on one worker goes to another that can run
    /// it, waiting for that one to have room, even while the first has free slots again.
    @Test func theNextAttemptAfterAnOverrunLeaseWaitsForAnotherWorker() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(10)), expiry: .seconds(600))
        _ = state.ready(readyMessage("silent", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.ready(readyMessage("busy", 1), from: w2, now: t0 + .seconds(5))
        _ = state.submit(job(2), from: clientA, now: t0 + .seconds(5))
        #expect(state.snapshot.workers[w1]?.running == [key(1)] && state.snapshot.workers[w2]?.running == [key(2)])

        _ = state.tick(now: t0 + .seconds(10))  // job 1's lease runs out on w1
        state.workerHolds(0, from: w1, now: t0 + .seconds(11))  // w1's slot is free again
        #expect(state.snapshot.workers[w1]?.running.isEmpty == true, "job 1 did not go back to the worker that let it overrun")
        #expect(state.snapshot.handoffs == [key(1)] && state.snapshot.jobs[key(1)]?.avoiding == w1)

        let next = try Sent(state.result(resultMessage(for: job(2), attempt: 1), from: w2, now: t0 + .seconds(12)))
        #expect(next.jobs.map(\.worker) == [w2] && next.jobs.map(\.job) == [attempt(2, of: job(1))])
    }

    /// A worker with one hung handler (it holds that job) keeps exactly that slot taken.
    @Test func aHeartbeatKeepsTheSlotsOfJobsTheWorkerStillHolds() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(10)), expiry: .seconds(600))
        _ = state.ready(readyMessage("hung", 2), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)
        _ = state.tick(now: t0 + .seconds(10))
        #expect(state.snapshot.workers[w1]?.stuck == 2)
        #expect(state.workerHolds(1, from: w1, now: t0 + .seconds(11)) == 1)
        #expect(state.snapshot.workers[w1]?.stuck == 1)
        #expect(state.snapshot.workers[w1]?.free == 0)  // one stuck, one running the freed slot's job
        #expect(state.snapshot.workers[w1]?.running.count == 1)
    }

    @Test func afterMaxAttemptsTheClientGetsExhaustedWithTheCause() throws {
        var state = BrokerState(config: brokerConfig(maxAttempts: 2, lease: .seconds(10)), expiry: .seconds(600))
        _ = state.ready(readyMessage("first", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.ready(readyMessage("second", 1), from: w2, now: t0)

        let second = try Sent(state.tick(now: t0 + .seconds(10)))
        #expect(second.jobs.map(\.job) == [attempt(2, of: job(1))])
        let end = try Sent(state.tick(now: t0 + .seconds(20)))
        #expect(end.jobs.isEmpty)
        #expect(end.results.count == 1)
        let outcome = try #require(end.results.first)
        #expect(outcome.client == clientA)
        #expect(outcome.result.status == .exhausted)
        #expect(outcome.result.attempt == 2)
        #expect(outcome.result.jobID == [1])
        let body = String(decoding: outcome.result.body, as: UTF8.self)
        #expect(body.hasPrefix("gave up after 2 attempts: "), "\(body)")
        #expect(body.contains("lease"), "\(body)")
        #expect(state.stats.exhausted == 1)
        #expect(state.stats.completed == 1)
        #expect(state.stats.leasesExpired == 2)
        #expect(state.stats.requeued == 1)
        #expect(state.snapshot.jobs.isEmpty)

        // The last attempt's late result does not make a second outcome.
        let late = try Sent(state.result(resultMessage(for: job(1), attempt: 2), from: w2, now: t0 + .seconds(21)))
        #expect(late.isEmpty)
        #expect(state.snapshot.workers[w2]?.stuck == 0)
        // A resubmission gets the same outcome from the cache.
        let again = try Sent(state.submit(job(1), from: clientA, now: t0 + .seconds(22)))
        #expect(again.jobs.isEmpty)
        #expect(again.results.map(\.result) == [outcome.result])
    }

    @Test func oneAttemptAllowedAndItsWorkerWentSilent() throws {
        var state = BrokerState(config: brokerConfig(maxAttempts: 1), expiry: .seconds(3))
        _ = state.ready(readyMessage("frozen", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        let end = try Sent(state.tick(now: t0 + .seconds(4)))
        let outcome = try #require(end.results.first)
        #expect(end.results.count == 1)
        #expect(outcome.result.status == .exhausted)
        #expect(outcome.result.attempt == 1)
        let body = String(decoding: outcome.result.body, as: UTF8.self)
        #expect(body.hasPrefix("gave up after 1 attempt: "), "\(body)")
        #expect(body.contains("went silent"), "\(body)")
        #expect(state.stats.requeued == 0)
        #expect(state.stats.workersLost == 1)
    }

    @Test func byeStopsNewJobsButRunningOnesStillFinish() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("stopping", 2), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        state.bye(from: w1, now: t0)
        #expect(state.snapshot.workers[w1]?.draining == true)
        #expect(state.snapshot.workers[w1]?.free == 0)
        #expect(state.readyWorkers == 0)

        let queued = try Sent(state.submit(job(2), from: clientA, now: t0))
        #expect(queued.isEmpty)
        #expect(Array(state.snapshot.queue) == [key(2)])

        let answer = resultMessage(for: job(1), attempt: 1)
        let finished = state.result(answer, from: w1, now: t0 + .seconds(1))
        #expect(finished == [.toClient(clientA, answer)])  // and no new job for it
        #expect(Array(state.snapshot.queue) == [key(2)])
        #expect(state.snapshot.workers[w1]?.running.isEmpty == true)
    }

    @Test func disconnectRequeuesWhatTheWorkerStillRan() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        _ = state.ready(readyMessage("leaving", 2), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)
        _ = state.submit(job(3), from: clientA, now: t0)  // queued
        _ = state.ready(readyMessage("staying", 3), from: w2, now: t0)  // takes job 3

        let moved = try Sent(state.disconnect(from: w1, now: t0 + .seconds(1)))
        #expect(moved.results.isEmpty)
        #expect(moved.jobs.allSatisfy { $0.worker == w2 && $0.job.attempt == 2 })
        #expect(Set(moved.jobs.map(\.job.jobID)) == [[1], [2]])
        #expect(state.snapshot.workers[w1] == nil)
        #expect(state.snapshot.workers[w2]?.running == [key(1), key(2), key(3)])
        #expect(state.stats.requeued == 2)
        #expect(state.stats.workersLost == 0)

        let unknown = try Sent(state.disconnect(from: w1, now: t0 + .seconds(2)))
        #expect(unknown.isEmpty)
    }

    @Test func readyFromANewConnectionOfTheSameWorkerKeepsItsJobs() throws {
        var state = BrokerState(config: brokerConfig(), expiry: .seconds(3))
        let oldConnection = bytes("conn-1")
        let newConnection = bytes("conn-2")
        _ = state.ready(readyMessage("worker-7", 2), from: oldConnection, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)
        _ = state.submit(job(2), from: clientA, now: t0)

        let reconnected = try Sent(state.ready(readyMessage("worker-7", 2), from: newConnection, now: t0 + .seconds(1)))
        #expect(reconnected.isEmpty)  // its two slots are still taken by its two jobs
        #expect(state.snapshot.workers[oldConnection] == nil)
        #expect(state.snapshot.workers[newConnection]?.running == [key(1), key(2)])
        #expect(state.snapshot.jobs[key(1)]?.worker == newConnection)
        #expect(state.snapshot.jobs[key(1)]?.attempt == 1)
        #expect(state.stats.requeued == 0)

        let answer = resultMessage(for: job(1), attempt: 1)
        let outputs = state.result(answer, from: newConnection, now: t0 + .seconds(2))
        #expect(outputs == [.toClient(clientA, answer)])
        #expect(state.stats.staleResults == 0)
        let next = try Sent(state.submit(job(3), from: clientA, now: t0 + .seconds(2)))
        #expect(next.jobs.map(\.worker) == [newConnection])
    }

    /// After the outcome cache forgot a job, a new run of the same job id starts again at attempt
    /// 1; a hung attempt 1 of the earlier run that finally answers from another worker must not
    /// be taken for the new run (results are fenced by attempt and by the holding connection).
    @Test func aLateResultOfAnEarlierRunIsNotTakenForANewRunOfTheSameJobID() throws {
        var state = BrokerState(config: brokerConfig(lease: .seconds(10), resultTTL: .seconds(10)), expiry: .seconds(600))
        _ = state.ready(readyMessage("hung", 1), from: w1, now: t0)
        _ = state.submit(job(1), from: clientA, now: t0)  // run 1, attempt 1 on w1, which hangs
        _ = state.ready(readyMessage("healthy", 1), from: w2, now: t0)
        _ = state.tick(now: t0 + .seconds(10))  // attempt 2 to w2; w1 keeps a stuck slot
        _ = state.result(resultMessage(for: job(1), attempt: 2, body: "run 1"), from: w2, now: t0 + .seconds(11))
        _ = state.tick(now: t0 + .seconds(21))  // run 1's outcome is forgotten
        let rerun = try Sent(state.submit(job(1), from: clientA, now: t0 + .seconds(22)))
        #expect(rerun.jobs.map(\.worker) == [w2])  // run 2, attempt 1, on w2
        #expect(state.snapshot.workers[w1]?.stuck == 1)

        // Run 1's hung attempt 1 finally answers from w1.
        let late = try Sent(state.result(resultMessage(for: job(1), attempt: 1, body: "run 1, very late"), from: w1, now: t0 + .seconds(23)))
        #expect(late.results.isEmpty)
        #expect(state.snapshot.workers[w2]?.running == [key(1)])
        #expect(state.snapshot.workers[w1]?.stuck == 0)
    }

    // MARK: Random model

    @Test func randomHistoriesKeepTheInvariants() async {
        for seed: UInt64 in [0x5EED_0001, 0xC0FF_EE42] {
            let simulation = BrokerSimulation(seed: seed, start: t0)
            await simulation.run(steps: 10_000)
            #expect(simulation.failures.isEmpty, "seed \(seed): \(simulation.failures.prefix(5).joined(separator: "\n"))")
            guard simulation.failures.isEmpty else { continue }
            #expect(simulation.outcomes > 500, "seed \(seed): too few jobs ended (\(simulation.outcomes)) to mean much")
            #expect(simulation.state.stats.staleResults > 50, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.state.stats.leasesExpired > 10, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.state.stats.workersLost > 10, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.state.stats.exhausted > 0, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.state.stats.duplicatesAnswered > 0, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.state.stats.duplicatesInFlight > 0, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.state.stats.rejectedOverloaded > 0, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.reruns > 0, "seed \(seed): no job id ran again after its outcome expired")
            #expect(simulation.transfers > 0, "seed \(seed): no worker reconnected while the broker still knew it")
            #expect(simulation.state.stats.unroutable > 0, "seed \(seed): \(simulation.state.stats)")
            #expect(simulation.readvertised > 0, "seed \(seed): no worker advertised other capabilities")
        }
    }
}

// MARK: - The random model


/// Drives a `BrokerState` the way the broker loop would, with clients that submit (and resubmit)
/// jobs of several handlers, priorities and required labels, and worker processes of different
/// capabilities that run them, answer late, hang, go silent, reconnect, advertise anew, say BYE
/// or leave, and records every invariant that breaks.
///
/// The choices come from the seed; which worker a tie goes to follows the state's dictionaries,
/// whose order Swift seeds per process, so histories differ between runs while every one of them
/// must keep the invariants.
private final class BrokerSimulation {
    /// One attempt a worker process was handed and has not answered yet.
    struct Held {
        let key: JobKey
        let attempt: UInt16
        let run: Int
    }

    struct Process {
        let workerID: [UInt8]
        let concurrency: Int
        /// What it may advertise; a READY again may switch to the other.
        let variants: [Capabilities]
        var variant = 0
        var capabilities: Capabilities { variants[variant] }
        /// The routing id of its current connection; nil while it is not connected.
        var routing: [UInt8]?
        var connections = 0
        var held: [Held] = []
        /// Frozen: it neither heartbeats nor answers.
        var silent = false
        var draining = false
    }

    /// What the model knows of one job id.
    struct Record {
        /// Runs accepted so far; a run starts when the broker accepts the id anew.
        var run = 0
        var inFlight = false
        var outcome: ResultMessage?
        var finishedAt: Instant?
    }

    struct RunID: Hashable {
        let key: JobKey
        let run: Int
    }

    struct Run {
        let message: JobMessage
        var attempts: [UInt16] = []
        var outcomes = 0
    }

    static let clients: [[UInt8]] = [bytes("client-0"), bytes("client-1")]
    static let idsPerClient = 24

    /// Client 0 names its jobs with one byte, client 1 with eight (a counter, as real clients
    /// do), so both kinds of id the broker indexes are exercised.
    static func jobID(_ number: Int, client: Int) -> [UInt8] {
        client == 0 ? [UInt8(number)] : withUnsafeBytes(of: UInt64(0x1000 + number).bigEndian) { Array($0) }
    }
    static let config = {
        var config = brokerConfig(maxAttempts: 3, lease: .seconds(5), queueLimit: 20, resultTTL: .seconds(20))
        config.unroutableTimeout = .seconds(30)
        return config
    }()
    /// h4 is served by nobody; gpu is carried by a few.
    static let handlers = ["h0", "h1", "h2", "h3", "h4"]

    var state = BrokerState(config: BrokerSimulation.config, expiry: .seconds(3))
    var random: SplitMix64
    var now: Instant
    var lastTick: Instant
    var processes: [Process] = [
        (1, [Capabilities.unknown, Capabilities(handlers: ["h0", "h1", "h2", "h3"], labels: [])]),
        (2, [Capabilities(handlers: ["h0", "h1"], labels: []), Capabilities(handlers: ["h1"], labels: ["gpu"])]),
        (3, [Capabilities(handlers: ["h1", "h2", "h3"], labels: ["gpu"]), .unknown]),
        (1, [Capabilities(handlers: ["h0"], labels: ["gpu"]), Capabilities(handlers: ["h0", "h2"], labels: [])]),
        (2, [Capabilities(handlers: ["h2", "h3"], labels: []), Capabilities(handlers: ["h3"], labels: ["gpu", "ssd"])]),
    ].enumerated().map { index, process in
        Process(workerID: bytes("worker-\(index)"), concurrency: process.0, variants: process.1)
    }
    /// Every routing id ever used, and its process (ids are never reused).
    var routes: [[UInt8]: Int] = [:]
    var records: [JobKey: Record] = [:]
    /// The job ids whose current run has not ended.
    var inFlight: Set<JobKey> = []
    var runs: [RunID: Run] = [:]
    var failures: [String] = []
    var step = 0
    var action = ""
    /// Client outcomes of runs (not counting cached answers and overloaded refusals).
    var outcomes = 0
    var reruns = 0
    var transfers = 0
    var readvertised = 0

    init(seed: UInt64, start: Instant) {
        random = SplitMix64(seed: seed)
        now = start
        lastTick = start
    }

    var maxAttempts: Int { Self.config.maxAttempts }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        guard !condition else { return }
        let text = "step \(step) (\(action)): \(message())"
        failures.append(text)
    }

    /// Steps left in the open batch (as the loop opens one per wake-up); 0: none is open.
    var batchSteps = 0

    /// Yields now and then, as every CPU-bound test here does (see `yieldingNowAndThen`).
    func run(steps: Int) async {
        for _ in 0..<steps where failures.isEmpty {
            step += 1
            await yieldingNowAndThen(step)
            let roll = random.below(100)
            if batchSteps == 0 && roll < 77 && random.chance(15) {
                state.beginBatch()
                batchSteps = 1 + random.below(6)
            }
            switch roll {
            case 0..<30: submit()
            case 30..<58: answer()
            case 58..<62: staleAnswer()
            case 62..<68: connect()
            case 68..<70: bye()
            case 70..<73: leave()
            case 73..<77: freezeOrThaw()
            default:
                closeBatch()  // the loop ticks after the wake-up's batch
                advance()
            }
            if batchSteps == 1 {
                closeBatch()
            } else if batchSteps > 1 {
                batchSteps -= 1
            }
            checkInvariants()
        }
        closeBatch()
        if failures.isEmpty { drain() }
    }

    func closeBatch() {
        guard batchSteps > 0 else { return }
        batchSteps = 0
        action = "end of batch"
        apply(state.endBatch(now: now))
    }

    // MARK: Clients

    func cacheExpired(_ record: Record) -> Bool {
        guard let finishedAt = record.finishedAt else { return false }
        return lastTick >= finishedAt + Self.config.resultTTL
    }

    func submit() {
        let clientIndex = random.below(Self.clients.count)
        let client = Self.clients[clientIndex]
        let number = random.below(Self.idsPerClient)
        let key = JobKey(clientID: client, jobID: Self.jobID(number, client: clientIndex))
        let record = records[key] ?? Record()
        action = "submit \(number) of client \(clientIndex)"
        // A run after the cache expired restarts at attempt 1; keep late answers of the earlier
        // run out of it (the known issue tested above).
        if !record.inFlight && record.run > 0 && cacheExpired(record)
            && processes.contains(where: { $0.held.contains { $0.key == key } }) {
            return
        }
        let handler = random.chance(4) ? Self.handlers[4] : Self.handlers[random.below(4)]
        let requires = random.chance(20) ? ["gpu"] : []
        let options = DispatchOptions(priority: UInt8(1 + random.below(9)), requires: requires)
        let message = JobMessage(clientID: client, jobID: key.jobID, handler: handler, deadline: 0,
                                 attempt: 1, payload: (0..<random.below(4)).map { _ in UInt8(random.below(256)) }, options: options)
        let before = state.stats
        if random.chance(2) {
            let impostor = Self.clients[1 - clientIndex]
            let outputs = state.submit(message, from: impostor, now: now)
            check(outputs.isEmpty && state.stats.malformed == before.malformed + 1 && state.stats.accepted == before.accepted,
                  "a submit under another client's id was not refused")
            return
        }
        let outputs = state.submit(message, from: client, now: now)
        let after = state.stats
        if after.accepted == before.accepted + 1 {
            check(!record.inFlight, "a job already in flight was accepted again")
            if record.run > 0 {
                check(cacheExpired(record), "a job whose outcome is still cached ran again")
                reruns += 1
            }
            var updated = record
            updated.run += 1
            updated.inFlight = true
            records[key] = updated
            inFlight.insert(key)
            runs[RunID(key: key, run: updated.run)] = Run(message: message)
            check(!outputs.contains { if case .toClient = $0 { true } else { false } }, "accepting a job answered its client")
            apply(outputs)
        } else if after.duplicatesInFlight == before.duplicatesInFlight + 1 {
            check(record.inFlight, "a job not in flight counted as a duplicate in flight")
            check(outputs.isEmpty, "a duplicate of a job in flight sent something")
        } else if after.duplicatesAnswered == before.duplicatesAnswered + 1 {
            check(!record.inFlight && !cacheExpired(record), "an answer came from the cache for a job not in it")
            check(record.outcome.map { outputs == [.toClient(client, $0)] } ?? false,
                  "a cached answer differs from the job's outcome")
        } else if after.rejectedOverloaded == before.rejectedOverloaded + 1 {
            check(state.snapshot.jobs.count == Self.config.queueLimit, "refused as overloaded with \(state.snapshot.jobs.count) jobs held")
            let result = outputs.count == 1 ? outputs.first.flatMap(decodeResult) : nil
            check(result?.status == .overloaded && result?.jobID == key.jobID && result?.clientID == client,
                  "an overloaded refusal is not one overloaded RESULT for the job")
        } else {
            check(false, "a submit changed none of accepted, duplicates or rejectedOverloaded")
        }
    }

    func decodeResult(_ output: BrokerOutput) -> ResultMessage? {
        guard case .toClient(_, let result) = output else { return nil }
        return result
    }

    // MARK: Workers

    func liveIndices(_ include: (Process) -> Bool) -> [Int] {
        processes.indices.filter { processes[$0].routing != nil && include(processes[$0]) }
    }

    /// The loop's `heard`: false for a connection the broker does not know, which it tells to
    /// say READY again (a draining worker stops instead).
    func heard(_ index: Int) -> Bool {
        guard let routing = processes[index].routing else { return false }
        if state.heard(from: routing, now: now) { return true }
        if processes[index].draining {
            processes[index].routing = nil
            processes[index].held = []
            processes[index].draining = false
        } else {
            apply(state.ready(readyMessage(index), from: routing, now: now))
        }
        return false
    }

    func answer() {
        let candidates = liveIndices { !$0.silent && !$0.held.isEmpty }
        guard !candidates.isEmpty else { return advance() }
        let index = candidates[random.below(candidates.count)]
        let entry = processes[index].held.remove(at: random.below(processes[index].held.count))
        let roll = random.below(100)
        let status: ResultStatus = roll < 75 ? .ok : roll < 88 ? .failed : roll < 94 ? .rejected : .declined
        action = "result \(status) of attempt \(entry.attempt) run \(entry.run) from worker \(index)"
        guard heard(index), let routing = processes[index].routing else { return }
        let message = ResultMessage(status: status, attempt: entry.attempt, clientID: entry.key.clientID,
                                    jobID: entry.key.jobID, body: [UInt8(random.below(256))])
        let job = state.snapshot.jobs[entry.key]
        let current = records[entry.key]?.run == entry.run && job?.attempt == entry.attempt && job?.worker != nil
        check(!current || job?.worker == routing, "the current attempt's holder is not the worker that runs it")
        let before = state.stats
        let outputs = state.result(message, from: routing, now: now)
        let answers = outputs.filter { if case .toClient = $0 { true } else { false } }
        if !current {
            check(answers.isEmpty && state.stats.staleResults == before.staleResults + 1, "a superseded attempt's result was not dropped")
        } else if status == .declined {
            check(answers.isEmpty, "a declined job ended")
            check(state.snapshot.jobs[entry.key]?.attempt == entry.attempt, "a declined job lost its attempt number")
        } else {
            check(answers == [.toClient(entry.key.clientID, message)], "the current attempt's result did not reach its client")
        }
        apply(outputs)
    }

    /// A RESULT naming attempt 0, which the broker never hands out.
    func staleAnswer() {
        let candidates = liveIndices { !$0.silent }
        guard !candidates.isEmpty else { return }
        let index = candidates[random.below(candidates.count)]
        let clientIndex = random.below(Self.clients.count)
        let client = Self.clients[clientIndex]
        action = "forged stale result from worker \(index)"
        guard heard(index), let routing = processes[index].routing else { return }
        let message = ResultMessage(status: .ok, attempt: 0, clientID: client,
                                    jobID: Self.jobID(random.below(Self.idsPerClient), client: clientIndex), body: [])
        let before = state.stats
        let outputs = state.result(message, from: routing, now: now)
        check(!outputs.contains { if case .toClient = $0 { true } else { false } }, "a result for attempt 0 reached a client")
        check(state.stats.staleResults == before.staleResults + 1, "a result for attempt 0 was not counted stale")
        apply(outputs)
    }

    /// READY: on a new connection (a first start, or a Paranoid Pirate reconnect), or again on the
    /// same one (the broker restarted or said DISCONNECT).
    func connect() {
        let index = random.below(processes.count)
        guard !processes[index].draining else { return }
        if processes[index].routing == nil || random.chance(60) {
            if let old = processes[index].routing, state.snapshot.workers[old] != nil { transfers += 1 }
            processes[index].connections += 1
            let routing = bytes("worker-\(index)#\(processes[index].connections)")
            routes[routing] = index
            processes[index].routing = routing
            action = "READY from worker \(index) on a new connection"
        } else {
            action = "READY from worker \(index) again"
        }
        if random.chance(30) {
            processes[index].variant = 1 - processes[index].variant
            readvertised += 1
            action += " with other capabilities"
        }
        processes[index].silent = false
        apply(state.ready(readyMessage(index), from: processes[index].routing!, now: now))
    }

    func readyMessage(_ index: Int) -> ReadyMessage {
        ReadyMessage(workerID: processes[index].workerID, concurrency: UInt16(processes[index].concurrency),
                     capabilities: processes[index].capabilities)
    }

    /// The model's message for a job key in flight.
    func message(of key: JobKey) -> JobMessage? {
        records[key].flatMap { runs[RunID(key: key, run: $0.run)]?.message }
    }

    func bye() {
        let candidates = liveIndices { !$0.silent && !$0.draining }
        guard !candidates.isEmpty else { return }
        let index = candidates[random.below(candidates.count)]
        action = "BYE from worker \(index)"
        guard heard(index), let routing = processes[index].routing else { return }
        processes[index].draining = true
        apply(state.bye(from: routing, now: now))
        check(state.snapshot.workers[routing]?.free == 0, "a worker that said BYE still has free slots")
    }

    /// DISCONNECT: the process exits, abandoning what it ran.
    func leave() {
        let candidates = liveIndices { !$0.silent }
        guard !candidates.isEmpty else { return }
        let index = candidates[random.below(candidates.count)]
        action = "DISCONNECT from worker \(index)"
        guard heard(index), let routing = processes[index].routing else { return }
        processes[index].routing = nil
        processes[index].held = []
        processes[index].draining = false
        apply(state.disconnect(from: routing, now: now))
        check(state.snapshot.workers[routing] == nil, "a worker that left is still known")
    }

    func freezeOrThaw() {
        let candidates = liveIndices { _ in true }
        guard !candidates.isEmpty else { return }
        let index = candidates[random.below(candidates.count)]
        processes[index].silent.toggle()
        action = processes[index].silent ? "worker \(index) freezes" : "worker \(index) thaws"
    }

    /// Time passes: live workers heartbeat (most of the time), then the broker ticks.
    func advance(by duration: Duration? = nil) {
        now += duration ?? .milliseconds(random.below(2000))
        action = "tick"
        for index in liveIndices({ !$0.silent }) where random.chance(85) {
            _ = heard(index)
        }
        lastTick = now
        apply(state.tick(now: now))
    }

    // MARK: Outputs

    /// Follows what the broker sends: jobs into the worker processes, outcomes to the model.
    func apply(_ outputs: ArraySlice<BrokerOutput>) {
        for output in outputs {
            switch output {
            case .toWorker(let routing, let job):
                guard let index = routes[routing], processes[index].routing == routing else {
                    check(false, "a job sent to a connection no worker uses")
                    continue
                }
                check(!processes[index].draining, "a job sent to a worker after its BYE")
                check(processes[index].capabilities.canRun(job.handler, requiring: job.options.requires),
                      "a job of \(job.handler) requiring \(job.options.requires) sent to worker \(index), which has "
                        + "\(processes[index].capabilities)")
                let key = JobKey(clientID: job.clientID, jobID: job.jobID)
                guard let record = records[key], record.inFlight, var run = runs[RunID(key: key, run: record.run)] else {
                    check(false, "a job dispatched that is not in flight")
                    continue
                }
                var expected = run.message
                expected.attempt = job.attempt
                check(job == expected, "a dispatched job differs from the one submitted")
                check(job.attempt >= 1 && Int(job.attempt) <= maxAttempts, "attempt \(job.attempt) dispatched")
                check(job.attempt >= (run.attempts.last ?? 1), "attempt numbers went down: \(run.attempts) then \(job.attempt)")
                run.attempts.append(job.attempt)
                check(Set(run.attempts).count <= maxAttempts, "more than \(maxAttempts) attempts: \(run.attempts)")
                runs[RunID(key: key, run: record.run)] = run
                processes[index].held.append(Held(key: key, attempt: job.attempt, run: record.run))
            case .toClient(let client, let result):
                check(result.clientID == client, "a RESULT sent to another client")
                let key = JobKey(clientID: result.clientID, jobID: result.jobID)
                guard var record = records[key], record.inFlight else {
                    check(false, "an outcome for a job not in flight")
                    continue
                }
                let id = RunID(key: key, run: record.run)
                runs[id]?.outcomes += 1
                check(runs[id]?.outcomes == 1, "a job got \(runs[id]?.outcomes ?? 0) outcomes")
                check(result.status != .declined && result.status != .overloaded, "a run ended as \(result.status)")
                if result.status == .unroutable, let message = message(of: key) {
                    let capable = state.snapshot.workers.values.filter {
                        !$0.draining && $0.capabilities.canRun(message.handler, requiring: message.options.requires)
                    }
                    check(capable.isEmpty, "a job ended unroutable while a live worker could run it")
                    check(String(decoding: result.body, as: UTF8.self).contains("\"\(message.handler)\""),
                          "an unroutable outcome does not name the handler")
                }
                if result.status == .exhausted {
                    let body = String(decoding: result.body, as: UTF8.self)
                    check(Int(result.attempt) == maxAttempts && body.hasPrefix("gave up after \(maxAttempts) attempts: the last ended because "),
                          "exhausted after attempt \(result.attempt): \(body)")
                }
                record.inFlight = false
                record.outcome = result
                record.finishedAt = now
                records[key] = record
                inFlight.remove(key)
                outcomes += 1
            }
        }
    }

    // MARK: Invariants

    func checkInvariants() {
        let snapshot = state.snapshot
        check(state.stats.workers == state.readyWorkers, "the worker gauge says \(state.stats.workers), \(state.readyWorkers) are ready")
        check(snapshot.jobs.count == inFlight.count && inFlight.allSatisfy { snapshot.jobs[$0] != nil },
              "the broker holds \(snapshot.jobs.count) jobs, \(inFlight.count) are in flight")
        var places: [JobKey: Int] = [:]
        places.reserveCapacity(inFlight.count)
        for key in snapshot.queue + snapshot.handoffs {
            places[key, default: 0] += 1
            check(snapshot.jobs[key]?.worker == nil, "a queued job names a worker")
        }
        for (routing, slot) in snapshot.workers {
            guard let index = routes[routing], processes[index].routing == routing else {
                check(false, "the broker keeps a connection no worker uses")
                continue
            }
            let process = processes[index]
            check(slot.workerID == process.workerID, "a connection has another worker's id")
            check(slot.running.count + slot.stuck <= process.concurrency,
                  "worker \(index): \(slot.running.count) running + \(slot.stuck) stuck > concurrency \(process.concurrency)")
            // A stuck slot is an attempt the process still runs although the broker gave it away.
            check(slot.stuck <= process.held.count - slot.running.count,
                  "worker \(index): \(slot.stuck) stuck slots but only \(process.held.count - slot.running.count) superseded attempts still running")
            for key in slot.running {
                places[key, default: 0] += 1
                let job = snapshot.jobs[key]
                check(job?.worker == routing, "a running job names another worker")
                check(process.held.contains { $0.key == key && $0.attempt == job?.attempt && $0.run == records[key]?.run },
                      "worker \(index) is said to run a job it was never given")
            }
        }
        for key in inFlight {
            check(places[key] == 1, "a job in flight is in \(places[key] ?? 0) places")
        }
        check(places.count == inFlight.count, "a finished job is still queued or running")
        for (_, job) in snapshot.jobs {
            check(job.attempt >= 1 && Int(job.attempt) <= maxAttempts, "a job at attempt \(job.attempt)")
        }
        if batchSteps == 0 {
            let free = snapshot.workers.filter { $0.value.free > 0 }
            for key in snapshot.handoffs {
                guard let message = message(of: key) else { continue }
                // It waits for a worker other than the one it overran on, and only while none
                // of those that can run it has room, and one can run it.
                let avoided = snapshot.jobs[key]?.avoiding
                let others = snapshot.workers.filter { $0.key != avoided && $0.value.capabilities.canRun(message.handler, requiring: message.options.requires) }
                check(!others.contains { $0.value.free > 0 }, "a job waits for another worker while one that can run it has free slots")
                check(others.contains { !$0.value.draining }, "a job waits for another worker while none can run it")
            }
            for key in snapshot.queue {
                guard let message = message(of: key) else { continue }
                check(!free.contains { $0.value.capabilities.canRun(message.handler, requiring: message.options.requires) },
                      "a job of \(message.handler) waits while a worker that can run it has free slots (outside a batch)")
            }
        }
        let perHandler = Dictionary(grouping: snapshot.queue.compactMap { message(of: $0)?.handler }, by: { $0 }).mapValues(\.count)
        check(snapshot.queuedPerHandler == perHandler, "queued per handler \(snapshot.queuedPerHandler), the queue holds \(perHandler)")
        check(state.stats.queued == snapshot.queue.count || batchSteps > 0,
              "the queued gauge says \(state.stats.queued), \(snapshot.queue.count) are queued")
    }

    /// Lets every worker wake up and answer until no job is left: every accepted run must end
    /// with exactly one outcome.
    func drain() {
        for index in processes.indices {
            processes[index].silent = false
            if processes[index].draining, let routing = processes[index].routing {
                action = "drain: worker \(index) leaves"
                processes[index].routing = nil
                processes[index].held = []
                processes[index].draining = false
                apply(state.disconnect(from: routing, now: now))
            }
            if processes[index].routing == nil {
                processes[index].connections += 1
                let routing = bytes("worker-\(index)#\(processes[index].connections)")
                routes[routing] = index
                processes[index].routing = routing
                action = "drain: READY from worker \(index)"
                apply(state.ready(readyMessage(index), from: routing, now: now))
            }
        }
        var rounds = 0
        while !state.snapshot.jobs.isEmpty && rounds < 100 && failures.isEmpty {
            rounds += 1
            step += 1
            for index in processes.indices {
                while !processes[index].held.isEmpty {
                    let entry = processes[index].held.removeFirst()
                    action = "drain: result of attempt \(entry.attempt) from worker \(index)"
                    guard heard(index), let routing = processes[index].routing else { continue }
                    apply(state.result(ResultMessage(status: .ok, attempt: entry.attempt, clientID: entry.key.clientID,
                                                     jobID: entry.key.jobID, body: []), from: routing, now: now))
                }
            }
            advance(by: .seconds(1))
            checkInvariants()
        }
        check(state.snapshot.jobs.isEmpty, "\(state.snapshot.jobs.count) jobs never ended (queue \(state.snapshot.queue.count))")
        for (id, run) in runs where run.outcomes != 1 {
            check(false, "run \(id.run) of job \(id.key.jobID) got \(run.outcomes) outcomes")
        }
        check(state.stats.completed == UInt64(outcomes), "completed \(state.stats.completed), outcomes \(outcomes)")
        check(state.stats.accepted == UInt64(runs.count), "accepted \(state.stats.accepted), runs \(runs.count)")
    }
}
