import Testing
import ZMQ

@Suite struct TransportTests {
    static let frames: [[UInt8]] = [
        [0x00, 0xFF, 0x7F, 0x80, 0x00],
        [],
        Array("handler-name".utf8),
        randomBytes(1000),
        [],
    ]

    @Test(arguments: Transport.allCases)
    func pushPullCarriesMultipartIntact(_ transport: Transport) throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        let push = try Socket(context, .push)
        try pair(pull, push, over: transport)
        try push.send(multipart: Self.frames)
        #expect(try receive(pull) == Self.frames)
    }

    @Test(arguments: Transport.allCases)
    func dealerRouterRoundTripUsesRoutingID(_ transport: Transport) throws {
        let context = try Context()
        let router = try Socket(context, .router)
        let dealer = try Socket(context, .dealer)
        try dealer.set(.routingID, Array("client-7".utf8))
        try pair(router, dealer, over: transport)
        try dealer.send(multipart: [Array("hello".utf8), []])
        let request = try receive(router)
        #expect(request == [Array("client-7".utf8), Array("hello".utf8), []])
        try router.send(multipart: [request[0]] + Self.frames)
        #expect(try receive(dealer) == Self.frames)
    }

    @Test(arguments: Transport.allCases)
    func eightMebibyteFrameArrivesIntact(_ transport: Transport) throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        let push = try Socket(context, .push)
        try pair(pull, push, over: transport)
        let big = randomBytes(8 * 1024 * 1024)
        try push.send(multipart: [[1], big, [2]])
        let got = try receive(pull, within: .seconds(20))
        #expect(got.count == 3)
        #expect(got[0] == [1] && got[2] == [2])
        #expect(got[1] == big)
    }

    @Test func messagesForwardWithoutCopying() throws {
        let context = try Context()
        let inbound = try Socket(context, .pull)
        let feeder = try Socket(context, .push)
        try pair(inbound, feeder, over: .inproc)
        let outbound = try Socket(context, .push)
        let sink = try Socket(context, .pull)
        try pair(sink, outbound, over: .inproc)

        try feeder.send(multipart: Self.frames)
        try inbound.set(.receiveTimeout, .seconds(5))
        let messages = try inbound.receiveMessages()
        #expect(messages.map(\.bytes) == Self.frames)
        #expect(messages[0].prefix(2) == [0x00, 0xFF])
        try outbound.send(messages: messages)
        #expect(try receive(sink) == Self.frames)
    }

    @Test func tooManyFramesIsReportedAndTheNextMessageIsIntact() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        let push = try Socket(context, .push)
        try pair(pull, push, over: .inproc)
        try push.send(multipart: Array(repeating: [1, 2, 3], count: 10))
        try push.send(multipart: [[9]])
        try pull.set(.receiveTimeout, .seconds(5))
        #expect(throws: ZMQError.self) { try pull.receive(maxFrames: 4) }
        do {
            _ = try pull.receive(maxFrames: 4)
        } catch {
            Issue.record("the message after an oversized one should be intact: \(error)")
        }
    }

    @Test func tryReceiveReturnsNilWhenNothingIsQueued() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        _ = try pull.bind(Transport.inproc.bindEndpoint())
        #expect(try pull.tryReceive() == nil)
        #expect(try pull.tryReceiveMessages() == nil)
    }

    @Test func wildcardTCPBindReportsTheRealPort() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        let endpoint = try pull.bind("tcp://127.0.0.1:0")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect(!endpoint.hasSuffix(":0"))
        try pull.unbind(endpoint)
    }
}
