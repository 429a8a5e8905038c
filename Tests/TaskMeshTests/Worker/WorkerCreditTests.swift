import Foundation
import Testing
import ZMQ
@testable import TaskMesh

// A reliable-mode worker's credit (Worker/WorkerCredit.swift): fixed by `worker.prefetch`, or
// sized from how long its jobs take; and a real worker announcing it to a raw broker socket.

@Suite struct WorkerCreditTests {
    @Test func aSetPrefetchIsAddedToTheConcurrencyWhateverTheJobsTake() {
        let credit = WorkerCredit(concurrency: 4, prefetch: 60, sendHighWaterMark: 0)
        #expect(credit.credit(meanJob: nil) == 64)
        #expect(credit.credit(meanJob: .nanoseconds(300)) == 64)
        #expect(credit.credit(meanJob: .seconds(2)) == 64)
        #expect(WorkerCredit(concurrency: 4, prefetch: 0, sendHighWaterMark: 0).credit(meanJob: .nanoseconds(300)) == 4)
    }

    /// The least window is one wake-up of a busy broker, which reads clients that long before it
    /// sends jobs again.
    @Test func theLeastWindowIsABrokerWakeUp() {
        #expect(WorkerCredit.window == BrokerLoop.clientReadBudget)
    }

    @Test func anUnsetPrefetchCoversTwentyMillisecondsOfMeasuredWork() {
        let credit = WorkerCredit(concurrency: 4, prefetch: nil, sendHighWaterMark: 0)
        #expect(credit.credit(meanJob: nil) == 4, "nothing timed yet: the free slots alone")
        #expect(credit.credit(meanJob: .microseconds(200)) == 4 + 400)  // 20 ms × 4 runners / 200 µs
        #expect(credit.credit(meanJob: .microseconds(40)) == 4 + 2000)
        #expect(credit.credit(meanJob: .microseconds(10)) == 4 + WorkerCredit.maximumPrefetch)
        #expect(credit.credit(meanJob: .zero) == 4 + WorkerCredit.maximumPrefetch)
        #expect(credit.credit(meanJob: .milliseconds(10)) == 4 + 8, "jobs of milliseconds: a few")
        #expect(credit.credit(meanJob: .milliseconds(100)) == 4, "slow jobs wait for no one at the worker")
        #expect(credit.credit(meanJob: .seconds(3600)) == 4)
    }

    /// Behind a slow link the credit covers the measured round trip, half again: 10 ms jobs on
    /// 4 runners behind 200 ms ask for 4 + 300 ms × 4 / 10 ms; a round trip shorter than the
    /// 20 ms floor changes nothing, and one past a second counts as a second.
    @Test func anUnsetPrefetchCoversTheMeasuredRoundTrip() {
        let credit = WorkerCredit(concurrency: 4, prefetch: nil, sendHighWaterMark: 0)
        #expect(credit.credit(meanJob: .milliseconds(10), roundTrip: .milliseconds(200)) == 4 + 120)
        #expect(credit.credit(meanJob: .milliseconds(10), roundTrip: nil) == 4 + 8)
        #expect(credit.credit(meanJob: .microseconds(200), roundTrip: .microseconds(80)) == 4 + 400, "a loopback round trip: the 20 ms floor")
        #expect(credit.credit(meanJob: .milliseconds(100), roundTrip: .seconds(30)) == 4 + 40, "at most a second's worth")
        #expect(WorkerCredit(concurrency: 4, prefetch: 0, sendHighWaterMark: 0).credit(meanJob: .milliseconds(10), roundTrip: .seconds(1)) == 4,
                "a set prefetch is not sized")
    }

    /// Jobs of microseconds end no faster than the loop thread reads them and sends their
    /// results: the credit holds a window of the loop's time per job where that exceeds the
    /// handlers' time over the runners, so a prefetched backlog drains within about the window.
    @Test func theLoopsTimePerJobBoundsTheCreditOfFastJobs() {
        let credit = WorkerCredit(concurrency: 4, prefetch: nil, sendHighWaterMark: 0)
        #expect(credit.credit(meanJob: .microseconds(20), loopCost: .microseconds(50)) == 4 + 400)  // 20 ms / 50 µs
        #expect(credit.credit(meanJob: .microseconds(20), roundTrip: .milliseconds(40), loopCost: .microseconds(50)) == 4 + 1200)
        #expect(credit.credit(meanJob: .microseconds(200), loopCost: .microseconds(1)) == 4 + 400, "the runners bound it: 20 ms × 4 / 200 µs")
        #expect(credit.credit(meanJob: .microseconds(200), loopCost: nil) == 4 + 400, "no loop time measured yet")
    }

    /// The loop's busy time per job ended, over at least 256 jobs, each measurement weighing a
    /// quarter of the estimate.
    @Test func theLoopCostIsBusyTimeOverJobsEnded() {
        var cost = LoopCost()
        cost.record(busy: .milliseconds(1), ended: 100)
        #expect(cost.perJob == nil, "fewer than 256 jobs")
        cost.record(busy: .microseconds(1560), ended: 156)
        #expect(cost.perJob == .microseconds(10))
        cost.record(busy: .milliseconds(3), ended: 0)  // a pass that ended nothing still counts its time
        cost.record(busy: .microseconds(9_800), ended: 256)
        #expect(cost.perJob == .microseconds(20), "10 µs + (50 µs - 10 µs) / 4: \(String(describing: cost.perJob))")
    }

    /// The estimate is the least round trip of the 30 s before the latest sample, read back from
    /// the probe's wrapping microsecond clock; an echo from more than a minute ago is no sample.
    @Test func theRoundTripIsTheLeastOfTheRecentProbes() {
        var estimate = RoundTripEstimate()
        #expect(estimate.estimate == nil)
        func sample(at sent: Instant, after wait: Duration) {
            let probe = estimate.sendingProbe(at: sent)
            estimate.ranDry()
            estimate.echoed(probe, at: sent + wait, jobsWaiting: 0)
        }
        let start = Instant(nanoseconds: 5_000_000_000)
        sample(at: start, after: .milliseconds(210))
        sample(at: start + .seconds(1), after: .milliseconds(200))
        sample(at: start + .seconds(2), after: .milliseconds(900))
        #expect(estimate.estimate == .milliseconds(200))
        sample(at: start + .seconds(20), after: .milliseconds(300))
        #expect(estimate.estimate == .milliseconds(200), "a queue that builds for seconds is no slower link")
        sample(at: start + .seconds(32), after: .milliseconds(300))
        #expect(estimate.estimate == .milliseconds(300), "samples older than 30 s give way")
        sample(at: start + .seconds(33), after: .seconds(61))
        #expect(estimate.estimate == .milliseconds(300))
        // Across the wrap of the 32-bit microsecond counter.
        let nearWrap = Instant(nanoseconds: Int64(UInt32.max) * 1000)
        var wrapping = RoundTripEstimate()
        let probe = wrapping.sendingProbe(at: nearWrap)
        wrapping.ranDry()
        wrapping.echoed(probe, at: nearWrap + .milliseconds(5), jobsWaiting: 0)
        #expect(wrapping.estimate == .milliseconds(5))
    }

    /// An answer that came in behind jobs (the worker never ran dry while the probe was out, or
    /// jobs wait as it is read) timed the queue the worker's own credit built: counting it would
    /// raise the credit and the queue in turn.
    @Test func anAnswerThatCameInBehindJobsIsNoSample() {
        var estimate = RoundTripEstimate()
        let start = Instant(nanoseconds: 9_000_000_000)
        var probe = estimate.sendingProbe(at: start)
        estimate.ranDry()
        let counted = estimate.echoed(probe, at: start + .milliseconds(1), jobsWaiting: 0)
        #expect(counted)
        for second in 1...40 {
            let sent = start + .seconds(Int64(second))
            probe = estimate.sendingProbe(at: sent)
            let busy = estimate.echoed(probe, at: sent + .milliseconds(54), jobsWaiting: 0)
            #expect(!busy, "the worker never ran dry while the probe was out")
            estimate.ranDry()
            let behindJobs = estimate.echoed(probe, at: sent + .milliseconds(54), jobsWaiting: 4000)
            #expect(!behindJobs, "jobs wait as the answer is read")
        }
        #expect(estimate.estimate == .milliseconds(1), "a flood's queue does not pass for a slow link")
        let later = start + .seconds(60)
        probe = estimate.sendingProbe(at: later)
        estimate.ranDry()
        estimate.echoed(probe, at: later + .milliseconds(200), jobsWaiting: 0)
        #expect(estimate.estimate == .milliseconds(200), "a worker that runs dry between jobs learns a slower link")
    }

    @Test func anUnsetPrefetchHoldsAtMostSixteenMebibytesOfPayload() {
        let credit = WorkerCredit(concurrency: 4, prefetch: nil, sendHighWaterMark: 0)
        #expect(credit.credit(meanJob: .microseconds(1), meanPayloadBytes: 16) == 4 + WorkerCredit.maximumPrefetch)
        // 64 KiB jobs: 16 MiB / (64 KiB + 64 B) is 255 of them.
        #expect(credit.credit(meanJob: .microseconds(1), meanPayloadBytes: 65_536) == 4 + 255)
        #expect(credit.credit(meanJob: .microseconds(1), meanPayloadBytes: 16_777_216) == 4, "payloads of 16 MiB: none waiting")
        #expect(WorkerCredit(concurrency: 4, prefetch: 1000, sendHighWaterMark: 0).credit(meanJob: nil, meanPayloadBytes: 65_536) == 1004,
                "a set prefetch is not sized")
    }

    @Test func theCreditStaysWithinHalfTheSendHighWaterMark() {
        #expect(WorkerCredit(concurrency: 4, prefetch: nil, sendHighWaterMark: 1000).credit(meanJob: .microseconds(1)) == 500)
        #expect(WorkerCredit(concurrency: 4, prefetch: 5000, sendHighWaterMark: 1000).credit(meanJob: nil) == 500)
        #expect(WorkerCredit(concurrency: 800, prefetch: 64, sendHighWaterMark: 1000).credit(meanJob: nil) == 800,
                "never below the concurrency")
    }

    @Test func onlyAChangeOfAQuarterOrMoreIsAnnounced() {
        #expect(!WorkerCredit.worthAnnouncing(100, over: 100))
        #expect(!WorkerCredit.worthAnnouncing(124, over: 100))
        #expect(WorkerCredit.worthAnnouncing(125, over: 100))
        #expect(!WorkerCredit.worthAnnouncing(81, over: 100))
        #expect(WorkerCredit.worthAnnouncing(80, over: 100))
        #expect(WorkerCredit.worthAnnouncing(1028, over: 4))
    }

    /// A worker with no prefetch set first announces its concurrency; once it has run a few
    /// hundred jobs of microseconds it says READY again on the same connection with room for
    /// more, and has answered every job. (How many more depends on the measured mean, which a
    /// loaded machine inflates by preempting handlers: `anUnsetPrefetchCoversTwoMillisecondsOfMeasuredWork`
    /// checks the sizing itself.)
    @Test func aReliableWorkerRaisesItsCreditOnceItHasTimedFastJobs() async throws {
        let credits = try await withStandInBroker { broker in
            try broker.runFastJobs(600, payloadSize: 1)
            return broker.credits
        }
        #expect(credits.first == 4)
        let raised = try #require(credits.last)
        #expect(raised > 4, "credit \(raised) after 600 jobs of microseconds")
    }

    /// Jobs of 64 KiB: however fast, the worker never asks for more than 16 MiB of them waiting
    /// (255 beyond its concurrency), from its first new READY on.
    @Test func aReliableWorkerOfLargeJobsBoundsItsCreditByTheirSize() async throws {
        let credits = try await withStandInBroker { broker in
            try broker.runFastJobs(300, payloadSize: 65_536)
            return broker.credits
        }
        #expect(credits.first == 4)
        #expect(credits.count >= 2, "the credit was raised: \(credits)")
        #expect(credits.allSatisfy { $0 <= 4 + 255 }, "\(credits)")
    }

    /// A worker that took hundreds of jobs while its jobs were fast, and then finds them slow,
    /// lowers its credit at the first slow job and hands back what waits beyond it (`declined`),
    /// so the broker can give those jobs to idle workers instead of leaving them queued there.
    @Test func aWorkerWhoseJobsTurnSlowHandsBackWhatItHeld() async throws {
        let (credits, declined, slowDone) = try await withStandInBroker { broker in
            try broker.runFastJobs(600, payloadSize: 1)
            let raised = broker.credits.count
            let (fastAnswered, fastDeclined) = (broker.answered.count, broker.declined.count)
            try broker.send(200, handler: "slow", payloadSize: 1, firstID: 600)
            try broker.read { $0.declined.count - fastDeclined >= 150 && $0.credits.count > raised && $0.credits.last! < 100 }
            return (broker.credits, broker.declined.count - fastDeclined, broker.answered.count - fastAnswered)
        }
        #expect(credits.count >= 3 && credits[1] > credits[0], "\(credits)")
        #expect(declined >= 150)
        // At the first slow jobs, not after the next 64 (which four runners need half a second for).
        #expect(slowDone <= 16, "\(slowDone) slow jobs had ended before the worker handed the rest back")
    }

    /// Starts a worker (concurrency 4, no prefetch, handlers `echo` and `slow`, 30 ms) for a raw
    /// ROUTER standing in for the broker, and runs `talk` with that ROUTER on a thread of its
    /// own: its blocking receives must not hold the cooperative threads the handlers need.
    private func withStandInBroker<T: Sendable>(_ talk: @escaping @Sendable (StandInBroker) throws -> T) async throws -> T {
        let context = try Context()
        let socket = try Socket(context, .router)
        let endpoint = try socket.bind("tcp://127.0.0.1:0")
        try socket.set(.receiveTimeout, .seconds(10))
        var topology = Topology.reliableLoopback(port: 0)
        topology.broker?.workersEndpoint = endpoint
        topology.worker.concurrency = 4
        // The stand-in sends no heartbeats: keep the worker from reconnecting (under a new
        // routing id) while a loaded machine runs the test.
        topology.heartbeat.interval = .seconds(60)
        var handlers = Handlers()
        try handlers.register("echo") { $0.payload }
        try handlers.register("slow") { job in
            try await Task.sleep(for: .milliseconds(30))
            return job.payload
        }
        let worker = try Worker(topology: topology, handlers: handlers)
        try await worker.start()

        nonisolated(unsafe) let broker = StandInBroker(socket)
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>, Never>) in
            Thread.detachNewThread {
                continuation.resume(returning: Result { try talk(broker) })
            }
        }
        await worker.stop()
        socket.close()
        #expect(broker.strangers == 0, "every message came from the worker's one connection")
        return try outcome.get()
    }
}

/// A raw ROUTER playing broker to one worker: it records the worker's READY credits and its
/// answers, by status.
private final class StandInBroker {
    struct Stalled: Error, CustomStringConvertible {
        let description: String
    }

    let socket: Socket
    private var routing: [UInt8] = []
    private(set) var credits: [UInt16] = []
    private(set) var answered = Set<[UInt8]>()
    private(set) var declined = Set<[UInt8]>()
    /// Messages from any other connection.
    private(set) var strangers = 0

    init(_ socket: Socket) {
        self.socket = socket
    }

    /// Waits for the first READY, sends `count` echo jobs of `payloadSize` bytes, and reads until
    /// every one is answered or handed back and a second READY came. (A loaded machine can make
    /// one of these jobs look slow, after which the worker lowers its credit and hands back
    /// `declined` what it holds beyond it, for a broker to send elsewhere: correct behaviour,
    /// which a stand-in that waited for those jobs' results would wait on for ever.)
    func runFastJobs(_ count: Int, payloadSize: Int) throws {
        try read { !$0.credits.isEmpty }
        try send(count, handler: "echo", payloadSize: payloadSize, firstID: 0)
        try read { $0.answered.union($0.declined).count >= count && $0.credits.count >= 2 }
    }

    func send(_ count: Int, handler: String, payloadSize: Int, firstID: Int) throws {
        for n in firstID..<(firstID + count) {
            let job = JobMessage(clientID: Array("client".utf8), jobID: withUnsafeBytes(of: UInt64(n).bigEndian) { Array($0) },
                                 handler: handler, deadline: 0, attempt: 1,
                                 payload: [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: payloadSize))
            try socket.send(multipart: [routing, job.encode()])
        }
    }

    /// Reads the worker's messages until `done`; throws after 10 s without one.
    func read(until done: (StandInBroker) -> Bool) throws {
        while !done(self) {
            guard let frames = try? socket.receive(), frames.count == 2 else {
                throw Stalled(description: "no message for 10 s: \(answered.count) answered, \(declined.count) declined, credits \(credits)")
            }
            if routing.isEmpty { routing = frames[0] }
            guard frames[0] == routing else {
                strangers += 1
                continue
            }
            func record(_ result: ResultMessage) {
                if result.status == .declined { declined.insert(result.jobID) } else { answered.insert(result.jobID) }
            }
            switch try WorkerToBroker.decode(frames[1]) {
            case .ready(let ready): credits.append(ready.concurrency)
            case .result(let result): record(result)
            case .results(let batch): try batch.forEach(record)
            default: break
            }
        }
    }
}
