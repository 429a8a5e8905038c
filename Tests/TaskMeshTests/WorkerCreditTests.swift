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
        defer { broker.close() }

        func nextReady() throws -> (routing: [UInt8], credit: UInt16)? {
            while true {
                let frames = try broker.receive()
                guard frames.count >= 2 else { continue }
                if case .ready(let ready)? = try? WorkerToBroker.decode(Array(frames.dropFirst())) { return (frames[0], ready.concurrency) }
                return nil
            }
        }
        let first = try #require(try nextReady())
        #expect(first.credit == 4)

        let count = 600
        let clientID = Array("client".utf8)
        for n in 0..<count {
            let job = JobMessage(clientID: clientID, jobID: withUnsafeBytes(of: UInt64(n).bigEndian) { Array($0) }, handler: "echo",
                                 deadline: 0, attempt: 1, payload: [UInt8(truncatingIfNeeded: n)])
            try broker.send(multipart: [first.routing] + job.encode())
        }
        var answered = Set<[UInt8]>()
        var raisedTo: UInt16?
        while answered.count < count || raisedTo == nil {
            let frames = try broker.receive()
            #expect(frames.first == first.routing, "the same connection")
            switch try WorkerToBroker.decode(Array(frames.dropFirst())) {
            case .ready(let ready): raisedTo = ready.concurrency
            case .result(let result): answered.insert(result.jobID)
            case .results(let batch): try batch.forEach { answered.insert($0.jobID) }
            default: break
            }
        }
        #expect(answered.count == count)
        let credit = try #require(raisedTo)
        #expect(credit > 100, "credit \(credit) after \(count) jobs of microseconds")
        await worker.stop()
    }
}
