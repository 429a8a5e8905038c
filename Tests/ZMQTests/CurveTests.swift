import Testing
import ZMQ

@Suite struct CurveTests {
    @Test func z85RoundTripsAndRejectsBadInput() throws {
        let bytes = randomBytes(32)
        let text = try #require(Z85.encode(bytes))
        #expect(text.count == 40)
        #expect(Z85.decode(text) == bytes)
        #expect(Z85.encode([1, 2, 3]) == nil)
        #expect(Z85.decode("abcd") == nil)
        #expect(Z85.decode("abcd\u{7F}") == nil)
        // The test vector from ZeroMQ RFC 32.
        #expect(Z85.encode([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]) == "HelloWorld")
    }

    @Test func keyPairDerivesItsPublicKeyAndHidesTheSecret() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.count == 40 && pair.secretKey.count == 40)
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        #expect(!pair.description.contains(pair.secretKey))
        #expect(throws: ZMQError.self) { try CurveKeyPair(secretKey: "short") }
    }

    private func curvePair(serverKeyForClient: String) throws -> (Context, Socket, Socket) {
        let server = try CurveKeyPair.generate()
        let client = try CurveKeyPair.generate()
        let context = try Context()
        let pull = try Socket(context, .pull)
        try pull.set(.curveServer, true)
        try pull.set(.curveSecretKey, Z85.decode(server.secretKey)!)
        let endpoint = try pull.bind("tcp://127.0.0.1:0")
        let push = try Socket(context, .push)
        let serverKey = serverKeyForClient.isEmpty ? server.publicKey : serverKeyForClient
        try push.set(.curveServerKey, Z85.decode(serverKey)!)
        try push.set(.curvePublicKey, Z85.decode(client.publicKey)!)
        try push.set(.curveSecretKey, Z85.decode(client.secretKey)!)
        try push.connect(endpoint)
        return (context, pull, push)
    }

    @Test func handshakeWithKnownKeysCarriesMessages() throws {
        try LibZMQ.requireCurve()
        let (_, pull, push) = try curvePair(serverKeyForClient: "")
        try push.set(.sendTimeout, .seconds(5))
        try push.send(multipart: [Array("secret".utf8), [0, 1]])
        #expect(try receive(pull) == [Array("secret".utf8), [0, 1]])
    }

    @Test func wrongServerKeyCarriesNothing() throws {
        try LibZMQ.requireCurve()
        let impostor = try CurveKeyPair.generate()
        let (_, pull, push) = try curvePair(serverKeyForClient: impostor.publicKey)
        let monitor = try push.monitor()
        // IMMEDIATE: with no completed handshake, the message cannot even be queued.
        #expect(try push.trySend(multipart: [[1]]) == false)
        let failure = try monitor.waitFor(
            [.handshakeFailedProtocol, .handshakeFailedNoDetail, .handshakeFailedAuth, .handshakeSucceeded],
            timeout: .seconds(10)
        )
        #expect(failure != nil && failure?.kind != .handshakeSucceeded)
        #expect(try pull.tryReceive() == nil)
    }
}
