import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

// Deadlines on the wire (docs/PROTOCOL.md, section 4): the relative form (time remaining from
// receipt, top bit set) and the absolute form of earlier revisions (ms since the Unix epoch),
// their codecs, how each hop turns them into a monotonic deadline, the worker's skip rule and the
// broker's expiry of queued jobs. No sockets; instants are built from one `Instant.current`.

private func u64Bytes(_ value: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
}

@Suite struct DeadlineTests {
    let t0 = Instant.current

    // MARK: Codec

    @Test func theRelativeFormSetsTheTopBitAndCarriesMilliseconds() {
        #expect(WireDeadline.relative(.milliseconds(2000)) == 0x8000_0000_0000_07D0)
        #expect(WireDeadline.relative(.zero) == 0x8000_0000_0000_0000, "no time left is a deadline, not none")
        #expect(WireDeadline.relative(.seconds(-5)) == 0x8000_0000_0000_0000)
        #expect(WireDeadline.relative(.microseconds(1999)) == 0x8000_0000_0000_0001, "whole milliseconds, rounded down")
        #expect(WireDeadline.relative(until: nil, now: t0) == 0)
        #expect(WireDeadline.relative(until: t0 + .seconds(3), now: t0 + .seconds(1)) == WireDeadline.relativeFlag | 2000)
        #expect(WireDeadline.isRelative(WireDeadline.relative(.seconds(1))))
        #expect(!WireDeadline.isRelative(1_700_000_000_000))
        #expect(!WireDeadline.isRelative(0))
    }

    static let forms: [UInt64] = [0, 1_700_000_000_000, WireDeadline.relativeFlag, WireDeadline.relativeFlag | 2000,
                                  WireDeadline.relativeFlag - 1, .max]

    @Test(arguments: forms)
    func aJobRoundTripsEitherFormUnchanged(_ deadline: UInt64) throws {
        let job = JobMessage(clientID: [0x63], jobID: [1], handler: "echo", deadline: deadline, attempt: 1, payload: [0xAA])
        let message = job.encode()
        #expect(Array(message[8..<16]) == u64Bytes(deadline), "the field sits at offset 8, big-endian")
        #expect(try JobMessage.decode(message) == job)
    }

    @Test(arguments: forms)
    func aJobsEntryRoundTripsEitherFormUnchanged(_ deadline: UInt64) throws {
        var writer = JobBatchWriter(clientID: [0x63])
        writer.append(jobID: [1], handler: "echo", deadline: deadline, attempt: 1, payload: [])
        writer.append(jobID: [2], handler: "echo", deadline: WireDeadline.relative(.seconds(1)), attempt: 1, payload: [])
        let message = writer.encode()
        #expect(Array(wireParts(message)[1][0..<8]) == u64Bytes(deadline), "each entry starts with its deadline")
        var read: [UInt64] = []
        try JobBatch.decode(message).forEach { read.append($0.deadline) }
        #expect(read == [deadline, WireDeadline.relativeFlag | 1000])
    }

    // MARK: Local deadlines

    @Test func theRelativeFormCountsFromReceiptWhateverTheWallClock() throws {
        let raw = WireDeadline.relativeFlag | 1500
        for wall: UInt64 in [0, 1_700_000_000_000, 1_700_000_060_000, .max] {
            let local = try #require(WireDeadline.local(raw, receivedAt: t0, wallClock: wall))
            #expect(local == t0 + .milliseconds(1500), "wall clock \(wall) must not matter")
        }
        #expect(WireDeadline.local(WireDeadline.relativeFlag, receivedAt: t0) == t0)
        #expect(WireDeadline.local(0, receivedAt: t0) == nil)
    }

    @Test func theAbsoluteFormIsPlacedByTheWallClockWithItsTolerance() throws {
        let wall: UInt64 = 1_700_000_000_000
        #expect(WireDeadline.local(wall + 2000, receivedAt: t0, wallClock: wall) == t0 + .seconds(3))
        #expect(WireDeadline.local(wall - 2000, receivedAt: t0, wallClock: wall) == t0 - .seconds(1))
        #expect(WireDeadline.local(wall + 2000, receivedAt: t0, wallClock: wall, tolerant: false) == t0 + .seconds(2))
    }

    @Test(arguments: [UInt64(1), 0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0001])
    func anyValueGivesADeadlineWithoutTrapping(_ raw: UInt64) {
        for wall: UInt64 in [0, 1_700_000_000_000, .max] {
            #expect(WireDeadline.local(raw, receivedAt: t0, wallClock: wall) != nil)
        }
    }

    // MARK: Worker

    private func makeRunner(_ handlers: Handlers) throws -> JobRunner {
        JobRunner(handlers: handlers, concurrency: 2, limit: 1 << 20, signal: try Signal(),
                  published: Shared(WorkerStats()), logger: Logger(label: "deadline-test"))
    }

    /// A worker decides by the deadline it fixed when it read the job: a relative deadline that
    /// has passed since is skipped (`expired`) with no tolerance, one still ahead runs; the
    /// absolute form still works (its tolerance is tested above); a handler sees the deadline by
    /// its own wall clock.
    @Test func theWorkerSkipsByItsLocalDeadline() async throws {
        let ran = Shared<[UInt8: Date?]>([:])
        var handlers = Handlers()
        try handlers.register("echo") { job in
            ran.update { $0[job.payload[0]] = job.deadline }
            return job.payload
        }
        let runner = try makeRunner(handlers)
        let client = Array("deadline-test".utf8)
        func send(_ n: UInt8, deadline: UInt64, receivedAt: Instant) {
            let job = JobMessage(clientID: client, jobID: [n], handler: "echo", deadline: deadline, attempt: 1, payload: [n])
            runner.accept(job.encode(), declining: false, receivedAt: receivedAt)
        }
        let now = Instant.current
        let wall = wallClockMilliseconds()
        let sentAt = Date()
        send(1, deadline: WireDeadline.relative(.milliseconds(300)), receivedAt: now - .seconds(1))  // passed 700 ms ago
        send(2, deadline: WireDeadline.relative(.seconds(60)), receivedAt: now)  // a minute left
        send(3, deadline: WireDeadline.relative(.seconds(60)), receivedAt: now - .seconds(61))  // passed 1 s ago
        send(4, deadline: 0, receivedAt: now - .seconds(3600))  // none
        send(5, deadline: wall + 60_000, receivedAt: now)  // absolute, a minute ahead
        send(6, deadline: wall - 5000, receivedAt: now)  // absolute, 5 s ago
        runner.startAccepted()
        try await eventually("every job ended") {
            runner.collectCompletions()
            return runner.inFlight == 0
        }
        #expect(runner.stats.expired == 3)
        #expect(runner.stats.succeeded == 3)
        let seen = ran.value
        #expect(Set(seen.keys) == [2, 4, 5], "ran: \(seen.keys.sorted())")
        // A minute after the job was read, by this host's wall clock (however long the runner took).
        let remaining = try #require(seen[2] ?? nil).timeIntervalSince(sentAt)
        #expect(abs(remaining - 60) < 1, "Job.deadline is a minute after receipt by this clock: \(remaining)")
        #expect(seen[4] == .some(nil), "no deadline: nil")
    }

    // MARK: Broker

    private static func config(queueLimit: Int = 100) -> Topology.Broker {
        var config = Topology.Broker.loopback(port: 5821)
        config.queueLimit = queueLimit
        config.lease = .seconds(600)
        config.unroutableTimeout = .seconds(600)
        return config
    }

    private let worker = Array("route-w".utf8)
    private let clientA = Array("client-a".utf8)

    private func job(_ n: UInt8, deadline: UInt64 = 0) -> JobMessage {
        JobMessage(clientID: clientA, jobID: [n], handler: "echo", deadline: deadline, attempt: 1, payload: [n])
    }

    private func readyState(concurrency: UInt16 = 1) -> BrokerState {
        var state = BrokerState(config: Self.config(), expiry: .seconds(3600))
        _ = state.ready(ReadyMessage(workerID: Array("w".utf8), concurrency: concurrency, capabilities: Capabilities(handlers: ["echo"], labels: [])),
                        from: worker, now: t0)
        return state
    }

    private func dispatched(_ outputs: ArraySlice<BrokerOutput>) -> [JobMessage] {
        outputs.compactMap { if case .toWorker(_, let job) = $0 { job } else { nil } }
    }

    private func answers(_ outputs: ArraySlice<BrokerOutput>) -> [ResultMessage] {
        outputs.compactMap { if case .toClient(_, let result) = $0 { result } else { nil } }
    }

    private func ok(_ job: JobMessage) -> ResultMessage {
        ResultMessage(status: .ok, attempt: 1, clientID: job.clientID, jobID: job.jobID, body: [])
    }

    /// The worker is busy; the job behind it has 1 s. When the slot frees after 2 s the job ends
    /// `expired` at its client and the next job goes instead.
    @Test func aJobWhoseDeadlinePassesInTheQueueEndsExpiredAtDispatch() throws {
        var state = readyState()
        let busy = job(1), doomed = job(2, deadline: WireDeadline.relative(.seconds(1))), next = job(3)
        #expect(dispatched(state.submit(busy, from: clientA, now: t0)).map(\.jobID) == [[1]])
        #expect(state.submit(doomed, from: clientA, now: t0).isEmpty)
        #expect(state.submit(next, from: clientA, now: t0).isEmpty)
        let outputs = state.result(ok(busy), from: worker, now: t0 + .seconds(2))
        #expect(dispatched(outputs).map(\.jobID) == [[3]], "the expired job is never dispatched")
        let ended = answers(outputs).filter { $0.jobID == [2] }
        #expect(ended.map(\.status) == [.expired])
        #expect(state.stats.expired == 1)
        #expect(state.stats.dispatched == 2)
        #expect(state.snapshot.jobs[JobKey(clientID: clientA, jobID: [2])] == nil, "its place is free")
        // A resend gets the same outcome from the cache, and still does not run.
        #expect(answers(state.submit(doomed, from: clientA, now: t0 + .seconds(3))).map(\.status) == [.expired])
    }

    /// Jobs waiting behind a worker that stays busy end at the first tick after their deadline,
    /// freeing their places in the queue; a job without a deadline keeps waiting.
    @Test func aTickEndsQueuedJobsWhoseDeadlinePassedWhileEveryWorkerIsBusy() throws {
        var state = readyState()
        _ = state.submit(job(1), from: clientA, now: t0)
        for n in UInt8(2)...UInt8(5) { _ = state.submit(job(n, deadline: WireDeadline.relative(.seconds(1))), from: clientA, now: t0) }
        _ = state.submit(job(6), from: clientA, now: t0)
        #expect(state.stats.queued == 5)
        #expect(answers(state.tick(now: t0 + .milliseconds(999))).isEmpty)
        let outputs = state.tick(now: t0 + .seconds(1))
        #expect(answers(outputs).map(\.jobID) == [[2], [3], [4], [5]])
        #expect(answers(outputs).allSatisfy { $0.status == .expired })
        #expect(dispatched(outputs).isEmpty)
        #expect(state.stats.queued == 1)
        #expect(state.stats.jobs == 2)
        #expect(state.stats.expired == 4)
    }

    /// The broker writes the time left at dispatch, in the relative form: what the job spent
    /// queued is gone from it. An old client's absolute deadline leaves relative too.
    @Test func theRemainingTimeWrittenAtDispatchShrinksWithQueueingTime() throws {
        var state = readyState()
        let first = job(1, deadline: WireDeadline.relative(.seconds(10)))
        let second = job(2, deadline: WireDeadline.relative(.seconds(10)))
        let wall = wallClockMilliseconds()
        let old = job(3, deadline: wall + 10_000)
        let timeless = job(4)
        let sentFirst = dispatched(state.submit(first, from: clientA, now: t0))
        #expect(sentFirst.map(\.deadline) == [WireDeadline.relativeFlag | 10_000], "dispatched at once: all 10 s left")
        _ = state.submit(second, from: clientA, now: t0 + .seconds(1))
        _ = state.submit(old, from: clientA, now: t0 + .seconds(1))
        _ = state.submit(timeless, from: clientA, now: t0 + .seconds(1))
        let sentSecond = dispatched(state.result(ok(first), from: worker, now: t0 + .seconds(4)))
        #expect(sentSecond.map(\.deadline) == [WireDeadline.relativeFlag | 7_000], "3 s of its 10 s went in the queue")
        let sentOld = try #require(dispatched(state.result(ok(second), from: worker, now: t0 + .seconds(6))).first)
        #expect(sentOld.jobID == [3])
        #expect(WireDeadline.isRelative(sentOld.deadline))
        let left = sentOld.deadline & WireDeadline.maxRemaining
        // 10 s from submission by the wall clock, plus the 1 s tolerance, less 5 s queued.
        #expect(left > 5_500 && left <= 6_000, "\(left) ms left")
        let sentTimeless = dispatched(state.result(ok(old), from: worker, now: t0 + .seconds(7)))
        #expect(sentTimeless.map(\.deadline) == [0], "no deadline stays none")
    }
}
