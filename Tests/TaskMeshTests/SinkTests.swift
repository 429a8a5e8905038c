import Testing
import ZMQ
@testable import TaskMesh

/// The sink in this process over tcp, fed by raw sockets, so its counters can be read.
@Suite struct SinkTests {
    func startSink() async throws -> (Sink, (results: String, clients: String)) {
        var topology = Topology.loopback(port: 0)
        topology.sink.resultsBind = "tcp://127.0.0.1:0"
        topology.sink.clientsBind = "tcp://127.0.0.1:0"
        topology.heartbeat.interval = .milliseconds(100)
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
            try worker.send(multipart: result.encode())
        }
        try await eventually("the sink dropped every result for the unknown client") { sink.stats.resultsDroppedNoClient == 1000 }
        #expect(sink.stats.resultsForwarded == 0)

        // A connected client still gets its own results at once.
        let client = try Socket(context, .dealer)
        try client.set(.routingID, Array("present".utf8))
        try client.connect(endpoints.clients)
        try client.set(.sendTimeout, .seconds(5))
        try client.send(multipart: HelloMessage().encode())
        let mine = ResultMessage(status: .ok, attempt: 1, clientID: Array("present".utf8), jobID: [7], body: [42])
        try await eventually("the result reaches its client") {
            try worker.send(multipart: mine.encode())
            try client.set(.receiveTimeout, .milliseconds(100))
            while let frames = try? client.receive() {
                if case .result(let result)? = try? SinkToClient.decode(frames) { return result == mine }
            }
            return false
        }
        await sink.stop()
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
            try socket.send(multipart: [[0x54, 0x4D, 0x01, 0x05], [1], [2]])
        }
        try await eventually("four malformed messages counted") { sink.stats.malformed == 4 }
        await sink.stop()
    }
}
