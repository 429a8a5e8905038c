import Testing
import ZMQ
@testable import TaskMesh

/// The sink in this process over tcp, fed by raw sockets, so its counters can be read.
@Suite struct SinkTests {
    /// A sink in this process. `heartbeat` is its interval: a client silent for three of them
    /// is forgotten, and results for it are dropped.
    func startSink(clientHighWaterMark: Int? = nil, heartbeat: Duration = .milliseconds(100)) async throws -> (Sink, (results: String, clients: String)) {
        var topology = Topology.loopback(port: 0)
        if let clientHighWaterMark { topology.limits.sendHighWaterMark = clientHighWaterMark }
        topology.sink?.resultsBind = "tcp://127.0.0.1:0"
        topology.sink?.clientsBind = "tcp://127.0.0.1:0"
        topology.heartbeat.interval = heartbeat
        let sink = try Sink(topology: topology)
        try await sink.start()
        return (sink, try #require(sink.endpoints))
    }

    @Test func resultForAGoneClientIsDroppedAndCountedWithoutBlocking() async throws {
        let (sink, endpoints) = try await startSink()
        let context = try Context()
        let worker = try Socket(context, .push)
        try worker.connect(endpoints.results)
        try worker.set(.sendTimeout, .seconds(5))
        for i in 0..<1000 {
            let result = ResultMessage(status: .ok, attempt: 1, clientID: Array("nobody".utf8), jobID: [UInt8(i & 0xFF)], body: [1])
            try worker.send(result.encode())
        }
        try await eventually("the sink dropped every result for the unknown client") { sink.stats.resultsDroppedNoClient == 1000 }
        #expect(sink.stats.resultsForwarded == 0)

        // A connected client still gets its own results at once.
        let client = try rawClientDealer(context, id: Array("present".utf8), connectingTo: endpoints.clients)
        let mine = ResultMessage(status: .ok, attempt: 1, clientID: Array("present".utf8), jobID: [7], body: [42])
        try await eventually("the result reaches its client") {
            try client.send(HelloMessage().encode())  // a live client heartbeats
            try worker.send(mine.encode())
            try client.set(.receiveTimeout, .milliseconds(100))
            while let frames = try? await receiveOffPool(client) {
                if case .result(let result)? = try? SinkToClient.decode(frames) { return result == mine }
            }
            return false
        }
        await sink.stop()
    }

    /// A client that stops reading for a while: its queue fills, the sink holds the rest and
    /// delivers every result, in order, once the client reads again.
    ///
    /// The raw client heartbeats (HELLO) only as it reads, so the sink's liveness is long: while
    /// the results pour in it is silent, and under a loaded CI run that outlasted a 300 ms
    /// expiry (the sink forgot it and dropped 3,454 results, as it must for a gone client).
    @Test func aBusyClientGetsEveryResultInOrderOnceItReadsAgain() async throws {
        let (sink, endpoints) = try await startSink(clientHighWaterMark: 100, heartbeat: .seconds(2))
        let context = try Context()
        var defaults = SocketDefaults.standard
        defaults.receiveHighWaterMark = 100
        let client = try Socket(context, .dealer, defaults: defaults)
        try client.set(.routingID, Array("slow".utf8))
        try client.connect(endpoints.clients)
        try client.set(.sendTimeout, .seconds(5))
        // The sink answers a new client's HELLO with MEMBERS: then its ROUTER knows the client.
        try client.send(HelloMessage().encode())
        try client.set(.receiveTimeout, .seconds(10))
        let hello = try? await receiveOffPool(client)
        let greeting = try #require(hello, "no MEMBERS within 10 s of HELLO")
        guard case .members? = try? SinkToClient.decode(greeting) else {
            Issue.record("the sink did not answer HELLO with MEMBERS: \(greeting)")
            return
        }
        let worker = try Socket(context, .push)
        try worker.connect(endpoints.results)
        try worker.set(.sendTimeout, .seconds(5))
        // 20 MB of results: far more than the client's queue, the sink's and the TCP buffers hold.
        let count = 5000
        for i in 0..<count {
            let result = ResultMessage(status: .ok, attempt: 1, clientID: Array("slow".utf8), jobID: withUnsafeBytes(of: UInt32(i).bigEndian) { Array($0) }, body: [UInt8](repeating: 1, count: 4096))
            try worker.send(result.encode())
        }
        // Everything left the worker and reached the sink, far more than the client's queues hold.
        try await eventually("the sink took every result") { sink.stats.resultsForwarded > 0 }
        var received: [Int] = []
        try client.set(.receiveTimeout, .seconds(10))
        while received.count < count {
            let frames: [UInt8]
            do {
                try client.send(HelloMessage().encode())  // as a real client heartbeats
                frames = try await receiveOffPool(client)
            } catch {
                Issue.record("no result for 10 s after \(received.count) of \(count): \(error); \(sink.stats)")
                break
            }
            if case .result(let result)? = try? SinkToClient.decode(frames) {
                received.append(Int(result.jobID.reduce(0) { $0 << 8 | UInt32($1) }))
            }
        }
        #expect(received.count == count, "a result was lost: \(sink.stats)")
        #expect(received.elementsEqual(0..<count), "results came out of order")
        #expect(sink.stats.resultsDroppedClientBusy == 0)
        try await eventually("the sink counted every result forwarded") { sink.stats.resultsForwarded == UInt64(count) }
        await sink.stop()
    }

    @Test func aClientThatStopsReadingHasABoundedBacklog() {
        var backlog = ResultBacklog<[UInt8]>(maxResultsPerClient: 3, maxBytesPerClient: 1000)
        let client = Array("stuck".utf8)
        let taken = (0..<4).map { _ in backlog.hold([1, 2], size: 2, for: client) }
        #expect(taken == [true, true, true, false], "past the count bound a result is refused")
        let big = backlog.hold([0], size: 999, for: Array("other".utf8))
        let overBytes = backlog.hold([1, 2], size: 2, for: Array("other".utf8))
        #expect(big && !overBytes, "past the byte bound a result is refused")
        var attempts = 0
        let delivered = backlog.deliver { id, _ in
            attempts += 1
            return id == client ? .gone : .busy
        }
        #expect(delivered.sent == 0 && delivered.dropped == 3)
        #expect(backlog.isHolding(Array("other".utf8)) && !backlog.isHolding(client))
        let rest = backlog.deliver { _, _ in .sent }
        #expect(rest.sent == 1 && rest.dropped == 0)
        #expect(backlog.isEmpty)
        #expect(attempts == 2)
    }

    /// A held RESULTS counts as the results it carries, against the bound and when delivered.
    @Test func aBacklogCountsResultsNotMessages() {
        var backlog = ResultBacklog<[UInt8]>(maxResultsPerClient: 10, maxBytesPerClient: 1 << 20)
        let client = Array("batched".utf8)
        let six = backlog.hold([1], size: 1, results: 6, for: client)
        let fiveMore = backlog.hold([2], size: 1, results: 5, for: client)
        let fourMore = backlog.hold([3], size: 1, results: 4, for: client)
        #expect(six && !fiveMore && fourMore, "6 + 5 results exceed the bound of 10, 6 + 4 do not")
        let delivered = backlog.deliver { _, _ in .sent }
        #expect(delivered.sent == 10 && delivered.dropped == 0)
        let seven = backlog.hold([4], size: 1, results: 7, for: client)
        #expect(seven)
        let dropped = backlog.deliver { _, _ in .gone }
        #expect(dropped.dropped == 7)
    }

    /// RESULTS reach their client whole, in order with RESULTs, and count per result.
    @Test func resultBatchesAreRoutedLikeResultsAndCountedPerResult() async throws {
        let (sink, endpoints) = try await startSink(heartbeat: .seconds(2))  // the raw client says HELLO once
        let context = try Context()
        let client = try rawClientDealer(context, id: Array("batched".utf8), connectingTo: endpoints.clients, receiveTimeout: .seconds(10))
        try client.send(HelloMessage().encode())
        let hello = try? await receiveOffPool(client)
        _ = try #require(hello, "no MEMBERS within 10 s of HELLO")
        let worker = try Socket(context, .push)
        try worker.connect(endpoints.results)
        try worker.set(.sendTimeout, .seconds(5))
        var next: UInt8 = 0
        func result(_ client: String) -> ResultMessage {
            defer { next &+= 1 }
            return ResultMessage(status: .ok, attempt: 1, clientID: Array(client.utf8), jobID: [next], body: [next])
        }
        for round in 0..<20 {
            var batch = ResultBatchWriter(clientID: Array("batched".utf8))
            for _ in 0..<3 { batch.append(result("batched")) }
            try worker.send(batch.encode())
            try worker.send(result("batched").encode())
            var elsewhere = ResultBatchWriter(clientID: Array("nobody".utf8))
            for _ in 0..<(1 + round % 4) { elsewhere.append(result("nobody")) }
            try worker.send(elsewhere.encode())
        }
        var received: [UInt8] = []
        while received.count < 80 {
            let frames = try await receiveOffPool(client)
            switch try SinkToClient.decode(frames) {
            case .result(let one): received.append(one.jobID[0])
            case .results(let batch): try batch.forEach { received.append($0.jobID[0]) }
            case .members, .progress: break
            }
        }
        let mine = (0..<20).flatMap { round -> [UInt8] in
            let start = (0..<round).reduce(0) { $0 + 4 + 1 + $1 % 4 }
            return (0..<4).map { UInt8(truncatingIfNeeded: start + $0) }
        }
        #expect(received == mine)
        try await eventually("the sink counted results, not messages") {
            sink.stats.resultsForwarded == 80 && sink.stats.resultsDroppedNoClient == 50
        }
        await sink.stop()
    }

    @Test func anOfferQueuesBehindWhatAlreadyWaitsAndSendsOtherwise() {
        var backlog = ResultBacklog<Int>()
        let client = Array("c".utf8)
        var sent: [Int] = []
        #expect(backlog.offer(1, size: 1, to: client, via: { sent.append($0); return .sent }) == .sent)
        #expect(backlog.offer(2, size: 1, to: client, via: { _ in .busy }) == .held)
        #expect(backlog.offer(3, size: 1, to: client, via: { sent.append($0); return .sent }) == .held, "3 must wait behind 2")
        #expect(backlog.offer(4, size: 1, to: Array("gone".utf8), via: { _ in .gone }) == .gone)
        #expect(backlog.pollTimeout(.seconds(1)) == ResultBacklog<Int>.retryInterval)
        _ = backlog.deliver { _, frames in sent.append(frames); return .sent }
        #expect(sent == [1, 2, 3])
        #expect(backlog.isEmpty && backlog.pollTimeout(.seconds(1)) == .seconds(1))
    }

    @Test func malformedWorkerAndClientMessagesAreCounted() async throws {
        let (sink, endpoints) = try await startSink()
        let context = try Context()
        let worker = try Socket(context, .push)
        try worker.connect(endpoints.results)
        let client = try Socket(context, .dealer)
        try client.connect(endpoints.clients)
        for socket in [worker, client] {
            try socket.set(.sendTimeout, .seconds(5))
            try socket.send(multipart: [[0xDE, 0xAD]])
            try socket.send(multipart: [[0x54, 0x4D, 0x02, 0x05, 0, 0, 0, 8], [1], [2]])  // a HELLO of three frames
        }
        try await eventually("four malformed messages counted") { sink.stats.malformed == 4 }
        await sink.stop()
    }
}
