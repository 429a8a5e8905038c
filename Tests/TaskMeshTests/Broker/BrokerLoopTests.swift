import Foundation
import Testing
import ZMQ
@testable import TaskMesh

/// The broker in this process over tcp, with a raw worker and a raw client, so that the client
/// can stop reading while results pile up.
@Suite struct BrokerLoopTests {
    /// A broker in this process on loopback ports of the system's choosing.
    func startBroker(sendHighWaterMark: Int? = nil, lease: Duration? = nil,
                     queueLimit: Int? = nil) async throws -> (Broker, (clients: String, workers: String)) {
        var topology = Topology.reliableLoopback(port: 0)
        if let queueLimit { topology.broker?.queueLimit = queueLimit }
        topology.broker?.clientsBind = "tcp://127.0.0.1:0"
        topology.broker?.workersBind = "tcp://127.0.0.1:0"
        if let sendHighWaterMark { topology.limits.sendHighWaterMark = sendHighWaterMark }
        if let lease { topology.broker?.lease = lease }
        let broker = try Broker(topology: topology)
        try await broker.start()
        return (broker, try #require(broker.endpoints))
    }

    /// A client that stops reading while its jobs complete: the broker holds the results and
    /// delivers every one once the client reads again (without the backlog, most are dropped).
    @Test func aBusyClientGetsEveryResultOnceItReadsAgain() async throws {
        let (broker, endpoints) = try await startBroker(sendHighWaterMark: 100)  // so the client's queue fills early
        let context = try Context()

        // A raw worker that answers every job at once with 8 KiB.
        let worker = try RawBrokerWorker(context, id: "raw-worker", connectingTo: endpoints.workers, credit: 50) { job in
            ResultMessage(status: .ok, attempt: job.attempt, clientID: job.clientID, jobID: job.jobID, body: [UInt8](repeating: 1, count: 8192))
        }

        var defaults = SocketDefaults.standard
        defaults.receiveHighWaterMark = 100
        let client = try Socket(context, .dealer, defaults: defaults)
        let clientID = Array("busy-client".utf8)
        try client.set(.routingID, clientID)
        try client.connect(endpoints.clients)
        try client.set(.sendTimeout, .seconds(5))
        // 40 MB of results: far more than the client's queue, the broker's and the TCP buffers hold.
        let count = 5000
        for i in 0..<count {
            let job = JobMessage(clientID: clientID, jobID: withUnsafeBytes(of: UInt32(i).bigEndian) { Array($0) },
                                 handler: "echo", deadline: 0, attempt: 1, payload: [1])
            try client.send(job.encode())
        }
        // Every job completes at the broker while the client reads nothing. Well within the
        // 30 s ZMTP heartbeat floor: a client that reads nothing for longer than that loses its
        // connection, and what waited for it (docs/RELIABILITY.md, what a paused process loses).
        try await eventually("the broker completed every job (\(broker.stats))", timeout: .seconds(20)) { broker.stats.completed == UInt64(count) }

        var received = Set<Int>()
        try client.set(.receiveTimeout, .seconds(10))
        while received.count < count {
            let frames = try await receiveOffPool(client)
            switch try? FromBroker.decode(frames) {
            case .result(let result)?: received.insert(Int(result.jobID.reduce(0) { $0 << 8 | UInt32($1) }))
            case .results(let batch)?: try batch.forEach { received.insert(Int($0.jobID.reduce(0) { $0 << 8 | UInt32($1) })) }
            default: break
            }
        }
        #expect(received == Set(0..<count))
        #expect(broker.stats.undeliverable == 0, "\(broker.stats)")
        try await worker.stop()
        await broker.stop()
    }

    /// A JOBS with a damaged entry: the intact entry before it is accepted, the damaged one is
    /// answered badRequest with its own attempt number, and the message counts as malformed;
    /// unless the broker already holds a job of that id (a resend), whose real outcome is due.
    @Test func aDamagedJobBatchEntryIsAnsweredBadRequest() async throws {
        let (broker, endpoints) = try await startBroker()
        let context = try Context()
        let clientID = Array("batch-client".utf8)
        let client = try rawClientDealer(context, id: clientID, connectingTo: endpoints.clients, receiveTimeout: .seconds(10))
        /// A JOBS of `intact` and then `damaged`, whose handler name is made invalid UTF-8.
        func damagedBatch(intact: UInt8, damaged: UInt8, attempt: UInt16) -> [UInt8] {
            var batch = JobBatchWriter(clientID: clientID)
            batch.append(jobID: [intact], handler: "echo", deadline: 0, attempt: 1, payload: [intact])
            batch.append(jobID: [damaged], handler: "echo", deadline: 0, attempt: attempt, payload: [damaged])
            var message = batch.encode()
            let second = JobBatchWriter.entrySize(jobID: [intact], handler: "echo", payload: [intact])
            message[wireParts(message)[0].count + second + 8 + 2 + 2 + 1] = 0xFF
            return message
        }
        // Job 7 is queued (no worker): a damaged resend of it gets no answer of its own.
        try client.send(JobMessage(clientID: clientID, jobID: [7], handler: "echo", deadline: 0, attempt: 1, payload: []).encode())
        try client.send(damagedBatch(intact: 1, damaged: 7, attempt: 1))
        try client.send(damagedBatch(intact: 3, damaged: 2, attempt: 3))
        var answers: [ResultMessage] = []
        while answers.isEmpty {
            switch try FromBroker.decode(try await receiveOffPool(client)) {
            case .result(let result): answers.append(result)
            case .results(let results): try results.forEach { answers.append($0) }
            default: continue
            }
        }
        #expect(answers.map(\.jobID) == [[2]], "only the unknown damaged job is answered")
        #expect(answers.first?.status == .badRequest && answers.first?.attempt == 3)
        try await eventually("the broker accepted the intact jobs and counted the damage") {
            broker.stats.accepted == 3 && broker.stats.malformed == 2
        }
        client.close()
        await broker.stop()
    }

    /// A worker that never got a job's first attempt (lost on the way: a connection it replaced)
    /// reports in its heartbeats that it holds nothing: once the attempt's lease runs out its
    /// slot is free again, and the next attempt goes to it. Without the report the slot stayed
    /// taken for good and the worker, alive and idle, got no job again.
    @Test func aWorkerThatHoldsNothingGetsItsSlotBackAfterALeaseRunsOut() async throws {
        let (broker, endpoints) = try await startBroker(lease: .milliseconds(500))
        let context = try Context()
        let worker = try RawBrokerWorker(context, id: "forgetful", connectingTo: endpoints.workers, credit: 1) { job in
            job.attempt > 1 ? RawBrokerWorker.echo(job) : nil  // attempt 1: lost
        }
        let clientID = Array("patient-client".utf8)
        let client = try rawClientDealer(context, id: clientID, connectingTo: endpoints.clients, receiveTimeout: .seconds(10))
        try client.send(JobMessage(clientID: clientID, jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: [42]).encode())
        let answer = try await results(client, count: 1).first
        #expect(answer?.status == .ok && answer?.attempt == 2 && answer?.body == [42], "\(String(describing: answer))")
        #expect(broker.stats.leasesExpired == 1 && broker.stats.slotsFreed == 1, "\(broker.stats)")
        try await worker.stop()
        client.close()
        await broker.stop()
    }

    /// A peer that claims 65,535 slots, takes jobs and answers none (its heartbeats saying it
    /// holds nothing, so no slot stays stuck) holds only the slots it has earned: 64 at first,
    /// halved at each lease it lets run out. The jobs it swallowed run on the honest worker as
    /// their next attempt, which waits for room there rather than going back to the peer; every
    /// job ends ok. It used to take every job, again at each attempt, until all were exhausted.
    @Test func aPeerThatClaimsManySlotsAndAnswersNothingHoldsFewJobs() async throws {
        let (broker, endpoints) = try await startBroker(lease: .milliseconds(300))
        let context = try Context()
        let hole = try RawBrokerWorker(context, id: "black-hole", connectingTo: endpoints.workers, credit: 65535) { _ in nil }
        try await eventually("the broker knows the peer") { broker.stats.workers == 1 }
        let honest = try RawBrokerWorker(context, id: "honest", connectingTo: endpoints.workers, credit: 4, answer: RawBrokerWorker.echo)
        try await eventually("the broker knows the honest worker") { broker.stats.workers == 2 }

        let clientID = Array("client".utf8)
        let client = try rawClientDealer(context, id: clientID, connectingTo: endpoints.clients, receiveTimeout: .seconds(10))
        for round in 0..<2 {
            let count = round == 0 ? 200 : 400
            for i in 0..<count {
                let id = withUnsafeBytes(of: UInt32(round << 16 | i).bigEndian) { Array($0) }
                try client.send(JobMessage(clientID: clientID, jobID: id, handler: "echo", deadline: 0, attempt: 1, payload: id).encode())
            }
            let answers = try await results(client, count: count)
            #expect(answers.allSatisfy { $0.status == .ok && $0.body == $0.jobID }, "round \(round): \(answers.filter { $0.status != .ok }.prefix(3))")
            #expect(Set(answers.map(\.jobID)).count == count)
        }
        print("black hole: the peer received \(hole.received) of 600 jobs; windows halved \(broker.stats.windowsHalved) times")
        // 64 at first, then 32, 16 ... 1 per lease: at most 127 over the first seven leases.
        #expect(hole.received <= BrokerState.initialWindow * 2, "the peer received \(hole.received) jobs (\(broker.stats))")
        #expect(honest.received >= 600)
        #expect(broker.stats.exhausted == 0 && broker.stats.windowsHalved >= 1, "\(broker.stats)")
        try await hole.stop()
        try await honest.stop()
        client.close()
        await broker.stop()
    }

    /// A client floods the broker far past its queue limit and never reads a result: the jobs
    /// past the limit are refused `overloaded`, the accepted ones run and their outcomes wait in
    /// the client's bounded backlog (`ResultBacklog`, whose bounds SinkTests check), and once the
    /// queue has drained another client's jobs are accepted and all end ok (seen before: every
    /// later job was refused).
    @Test func aFloodingClientThatNeverReadsLeavesTheBrokerServingOthers() async throws {
        let (broker, endpoints) = try await startBroker(sendHighWaterMark: 100, queueLimit: 1000)
        let context = try Context()
        let worker = try RawBrokerWorker(context, id: "worker", connectingTo: endpoints.workers, credit: 50, answer: RawBrokerWorker.echo)
        try await eventually("the broker knows the worker") { broker.stats.workers == 1 }

        var defaults = SocketDefaults.standard
        defaults.receiveHighWaterMark = 10
        let flooderID = Array("flooder".utf8)
        let flooder = try Socket(context, .dealer, defaults: defaults)
        try flooder.set(.routingID, flooderID)
        try flooder.connect(endpoints.clients)
        try flooder.set(.sendTimeout, .seconds(5))
        let payload = [UInt8](repeating: 7, count: 4096)
        for i in 0..<20_000 {
            let id = withUnsafeBytes(of: UInt32(i).bigEndian) { Array($0) }
            try flooder.send(JobMessage(clientID: flooderID, jobID: id, handler: "echo", deadline: 0, attempt: 1, payload: payload).encode())
        }
        try await eventually("the broker took the whole flood and drained its queue (\(broker.stats))", timeout: .seconds(60)) {
            broker.stats.accepted + broker.stats.rejectedOverloaded == 20_000 && broker.stats.jobs == 0
        }
        #expect(broker.stats.rejectedOverloaded > 0, "\(broker.stats)")

        let clientID = Array("patient".utf8)
        let client = try rawClientDealer(context, id: clientID, connectingTo: endpoints.clients, receiveTimeout: .seconds(10))
        for i in 0..<500 {
            let id = withUnsafeBytes(of: UInt32(i).bigEndian) { Array($0) }
            try client.send(JobMessage(clientID: clientID, jobID: id, handler: "echo", deadline: 0, attempt: 1, payload: id).encode())
        }
        let answers = try await results(client, count: 500)
        #expect(answers.allSatisfy { $0.status == .ok && $0.body == $0.jobID }, "\(answers.filter { $0.status != .ok }.prefix(3))")
        #expect(Set(answers.map(\.jobID)).count == 500)
        print("flood: \(broker.stats.accepted - 500) accepted, \(broker.stats.rejectedOverloaded) refused, \(broker.stats.undeliverable) outcomes undeliverable; then 500 of 500 ok")
        try await worker.stop()
        flooder.close()
        client.close()
        await broker.stop()
    }

    /// A worker's HEARTBEAT with a probe is answered at once by a HEARTBEAT carrying it back.
    @Test func aProbeInAWorkersHeartbeatComesBackAtOnce() async throws {
        let (broker, endpoints) = try await startBroker()
        let context = try Context()
        let worker = try rawWorkerDealer(context, connectingTo: endpoints.workers)
        try worker.send(ReadyMessage(workerID: Array("prober".utf8), concurrency: 1).encode())
        try worker.send(WorkerHeartbeat(held: 0, probe: 0xCAFE).encode())
        var echo: UInt32?
        let deadline = ContinuousClock.now + .seconds(10)
        while echo == nil && ContinuousClock.now < deadline {
            if case .heartbeat(let heartbeat)? = try? FromBroker.decode(try await receiveOffPool(worker)) { echo = heartbeat.echo }
        }
        #expect(echo == 0xCAFE)
        worker.close()
        await broker.stop()
    }

    /// The next `count` results that reach a raw client.
    private func results(_ client: Socket, count: Int) async throws -> [ResultMessage] {
        var answers: [ResultMessage] = []
        while answers.count < count {
            switch try FromBroker.decode(try await receiveOffPool(client)) {
            case .result(let result): answers.append(result)
            case .results(let results): try results.forEach { answers.append($0) }
            default: continue
            }
        }
        return answers
    }

    /// A result from a connection the broker does not know (a worker it forgot) is counted stale,
    /// and the sender is told to say READY again.
    @Test func aResultFromAnUnknownWorkerIsCountedStaleAndAnsweredDisconnect() async throws {
        let (broker, endpoints) = try await startBroker()
        let context = try Context()
        let stranger = try rawWorkerDealer(context, connectingTo: endpoints.workers)
        try stranger.send(ResultMessage(status: .ok, attempt: 1, clientID: [1], jobID: [2], body: []).encode())
        var batch = ResultBatchWriter(clientID: [1])
        batch.append(ResultMessage(status: .ok, attempt: 1, clientID: [1], jobID: [3], body: []))
        batch.append(ResultMessage(status: .ok, attempt: 1, clientID: [1], jobID: [4], body: []))
        try stranger.send(batch.encode())
        let answer = try await receiveOffPool(stranger)
        #expect(try ByteReader.command(of: answer) == .disconnect)
        try await eventually("the broker counted three stale results (\(broker.stats))") { broker.stats.staleResults == 3 }
        stranger.close()
        await broker.stop()
    }
}
