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

    @Test func anUnsetPrefetchCoversTwoMillisecondsOfMeasuredWork() {
        let credit = WorkerCredit(concurrency: 4, prefetch: nil, sendHighWaterMark: 0)
        #expect(credit.credit(meanJob: nil) == 4, "nothing timed yet: the free slots alone")
        #expect(credit.credit(meanJob: .microseconds(20)) == 4 + 400)  // 2 ms × 4 runners / 20 µs
        #expect(credit.credit(meanJob: .microseconds(4)) == 4 + 2000)
        #expect(credit.credit(meanJob: .microseconds(1)) == 4 + WorkerCredit.maximumPrefetch)
        #expect(credit.credit(meanJob: .zero) == 4 + WorkerCredit.maximumPrefetch)
        #expect(credit.credit(meanJob: .milliseconds(50)) == 4, "slow jobs wait for no one at the worker")
        #expect(credit.credit(meanJob: .seconds(3600)) == 4)
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
    /// hundreds more, and has answered every job.
    @Test func aReliableWorkerRaisesItsCreditOnceItHasTimedFastJobs() async throws {
        let credits = try await creditsAnnounced(jobs: 600, payloadSize: 1)
        #expect(credits.first == 4)
        let raised = try #require(credits.last)
        #expect(raised > 100, "credit \(raised) after 600 jobs of microseconds")
    }

    /// Jobs of 64 KiB: however fast, the worker never asks for more than 16 MiB of them waiting
    /// (255 beyond its concurrency), from its first new READY on.
    @Test func aReliableWorkerOfLargeJobsBoundsItsCreditByTheirSize() async throws {
        let credits = try await creditsAnnounced(jobs: 300, payloadSize: 65_536)
        #expect(credits.first == 4)
        #expect(credits.count >= 2, "the credit was raised: \(credits)")
        #expect(credits.allSatisfy { $0 <= 4 + 255 }, "\(credits)")
    }

    /// Runs `jobs` echo jobs of `payloadSize` bytes through a real worker (concurrency 4, no
    /// prefetch) from a raw ROUTER standing in for the broker, and returns every credit the
    /// worker announced until it had answered them all and said READY again.
    private func creditsAnnounced(jobs count: Int, payloadSize: Int) async throws -> [UInt16] {
        let context = try Context()
        let broker = try Socket(context, .router)
        let endpoint = try broker.bind("tcp://127.0.0.1:0")
        try broker.set(.receiveTimeout, .seconds(10))
        var topology = Topology.loopback(port: 0)
        topology.mode = .reliable
        topology.broker.workersEndpoint = endpoint
        topology.worker.concurrency = 4
        // This stand-in broker sends no heartbeats: keep the worker from reconnecting (under a
        // new routing id) while a loaded machine runs the test.
        topology.heartbeat.interval = .seconds(60)
        var handlers = Handlers()
        handlers.register("echo") { $0.payload }
        let worker = try Worker(topology: topology, handlers: handlers)
        try await worker.start()

        // The blocking receives run on a thread of their own: on the cooperative pool they
        // could hold every thread the worker's handlers need.
        nonisolated(unsafe) let socket = broker
        let exchange = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Exchange, any Error>, Never>) in
            Thread.detachNewThread {
                continuation.resume(returning: Result { try Exchange(socket, jobs: count, payloadSize: payloadSize) })
            }
        }
        await worker.stop()
        broker.close()
        let result = try exchange.get()
        #expect(result.answered == count)
        #expect(result.strangers == 0, "every message came from the worker's one connection")
        return result.credits
    }
}

/// What a stand-in broker saw of one worker: READY credits in order, jobs answered, and
/// messages from any other connection.
private struct Exchange: Sendable {
    struct Stalled: Error, CustomStringConvertible {
        let description: String
    }

    var credits: [UInt16] = []
    var answered = 0
    var strangers = 0

    /// Waits for the worker's READY on `broker`, sends it `count` echo jobs, and reads until
    /// every one is answered and a second READY came.
    init(_ broker: Socket, jobs count: Int, payloadSize: Int) throws {
        var routing: [UInt8] = []
        while credits.isEmpty {
            let frames = try broker.receive()
            guard frames.count >= 2, case .ready(let ready)? = try? WorkerToBroker.decode(Array(frames.dropFirst())) else { continue }
            (routing, credits) = (frames[0], [ready.concurrency])
        }
        let clientID = Array("client".utf8)
        for n in 0..<count {
            let job = JobMessage(clientID: clientID, jobID: withUnsafeBytes(of: UInt64(n).bigEndian) { Array($0) }, handler: "echo",
                                 deadline: 0, attempt: 1, payload: [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: payloadSize))
            try broker.send(multipart: [routing] + job.encode())
        }
        var answered = Set<[UInt8]>()
        while answered.count < count || credits.count < 2 {
            guard let frames = try? broker.receive() else {
                throw Stalled(description: "no message for 10 s: \(answered.count) of \(count) answered, credits \(credits)")
            }
            guard frames.first == routing else {
                strangers += 1
                continue
            }
            switch try WorkerToBroker.decode(Array(frames.dropFirst())) {
            case .ready(let ready): credits.append(ready.concurrency)
            case .result(let result): answered.insert(result.jobID)
            case .results(let batch): try batch.forEach { answered.insert($0.jobID) }
            default: break
            }
        }
        self.answered = answered.count
    }
}
