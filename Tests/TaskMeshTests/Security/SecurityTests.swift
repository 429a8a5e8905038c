import Foundation
import Testing
import ZMQ
@testable import TaskMesh

/// Key files for one test, in a fresh folder: a sink, a worker and two clients.
struct TestKeys {
    let folder: String

    init() throws {
        folder = temporaryPath("keys")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["sink", "broker", "worker", "client", "client-b", "stranger"] {
            try KeyFiles.generate(name: name, in: folder)
        }
    }

    func path(_ file: String) -> String { "\(folder)/\(file)" }
    func pair(_ name: String) throws -> CurveKeyPair { try KeyFiles.readSecret(path("\(name).key")) }
    func publicKey(_ name: String) throws -> [UInt8] { try KeyFiles.readPublic(path("\(name).pub")) }

    /// The security section of a topology with these keys.
    var security: Topology.Security {
        Topology.Security(
            keys: [.sink: path("sink.key"), .broker: path("broker.key"), .worker: path("worker.key"), .client: path("client.key")],
            sinkPublicKey: path("sink.pub"), brokerPublicKey: path("broker.pub"),
            allowedClients: [path("client.pub"), path("client-b.pub")], allowedWorkers: [path("worker.pub")])
    }

    /// A secure direct-mode topology on loopback with free ports chosen by the sink.
    func directTopology() -> Topology {
        var topology = Topology.loopback(port: 0)
        topology.sink?.resultsBind = "tcp://127.0.0.1:0"
        topology.sink?.clientsBind = "tcp://127.0.0.1:0"
        topology.heartbeat.interval = .milliseconds(100)
        topology.security = security
        return topology
    }
}

/// A raw socket speaking CURVE with a given key, for playing attacker or stranger.
func curveSocket(_ context: Context, _ type: SocketType, key: CurveKeyPair, serverKey: [UInt8]) throws -> Socket {
    let socket = try Socket(context, type)
    try socket.set(.curvePublicKey, Z85.decode(key.publicKey)!)
    try socket.set(.curveSecretKey, Z85.decode(key.secretKey)!)
    try socket.set(.curveServerKey, serverKey)
    try socket.set(.sendTimeout, .seconds(2))
    return socket
}

@Suite struct SecurityTests {
    /// A secure sink in this process, with its resolved endpoints.
    func startSink(_ keys: TestKeys) async throws -> (Sink, (results: String, clients: String), Topology) {
        var topology = keys.directTopology()
        let sink = try await InProcessMesh.startSink(&topology)
        return (sink, try #require(sink.endpoints), topology)
    }

    @Test func keyFilesHoldKeysWithPrivateSecrets() throws {
        let keys = try TestKeys()
        let attributes = try FileManager.default.attributesOfItem(atPath: keys.path("sink.key"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let pair = try keys.pair("sink")
        #expect(try keys.publicKey("sink") == Z85.decode(pair.publicKey))
        #expect(throws: SecurityError.self) { try KeyFiles.generate(name: "sink", in: keys.folder) }
        #expect(throws: SecurityError.self) { try KeyFiles.readPublic(keys.path("nothing.pub")) }
        let allowlist = try KeyFiles.readAllowlist([keys.folder])
        #expect(allowlist.count == 6)
    }

    @Test func zapAnswersOnlyListedKeys() throws {
        let known = [UInt8](repeating: 7, count: 32)
        let lists = ["taskmesh.clients": Set([known])]
        func request(_ domain: String, _ key: [UInt8]) -> [[UInt8]] {
            [Array("1.0".utf8), [1], Array(domain.utf8), Array("127.0.0.1".utf8), [], Array("CURVE".utf8), key]
        }
        let ok = ZAPAuthenticator.answer(request("taskmesh.clients", known), allowlists: lists)
        #expect(ok.accepted && ok.frames[2] == Array("200".utf8) && ok.frames[4] == Array(Z85.encode(known)!.utf8))
        #expect(!ZAPAuthenticator.answer(request("taskmesh.workers", known), allowlists: lists).accepted)
        #expect(!ZAPAuthenticator.answer(request("taskmesh.clients", [UInt8](repeating: 8, count: 32)), allowlists: lists).accepted)
        let plain = [Array("1.0".utf8), [1], Array("taskmesh.clients".utf8), [], [], Array("NULL".utf8)]
        #expect(!ZAPAuthenticator.answer(plain, allowlists: lists).accepted)
        #expect(!ZAPAuthenticator.answer([[1, 2]], allowlists: lists).accepted)
    }

    @Test func unknownClientKeyIsRejectedAndCounted() async throws {
        let keys = try TestKeys()
        let (sink, endpoints, _) = try await startSink(keys)
        let context = try Context()
        // A stranger tries up to three connections; none may be accepted, and each verdict counts.
        var verdicts: [MonitorEvent.Kind] = []
        for _ in 0..<3 where !verdicts.contains(.handshakeFailedAuth) {
            let stranger = try curveSocket(context, .dealer, key: try keys.pair("stranger"), serverKey: try keys.publicKey("sink"))
            let monitor = try stranger.monitor()
            try stranger.connect(endpoints.clients)
            if let verdict = try monitor.waitFor([.handshakeFailedAuth, .handshakeSucceeded], timeout: .seconds(3)) {
                verdicts.append(verdict.kind)
            }
            #expect(try stranger.trySend(HelloMessage().encode()) == false, "nothing can be delivered")
            stranger.close()
        }
        #expect(verdicts.contains(.handshakeFailedAuth) && !verdicts.contains(.handshakeSucceeded), "\(verdicts)")
        #expect(sink.stats.liveClients == 0)
        #expect(sink.stats.rejectedPeers >= 3, "two self-test probes and the stranger")
        await sink.stop()
    }

    @Test func missingOrCrashedZAPHandlerRejectsEvenAllowedKeys() async throws {
        let keys = try TestKeys()
        let server = try keys.pair("sink")
        let client = try keys.pair("client")
        let context = try Context()
        func curveServer() throws -> (Socket, String) {
            let pull = try Socket(context, .pull)
            try pull.set(.curveServer, true)
            try pull.set(.curveSecretKey, Z85.decode(server.secretKey)!)
            try pull.set(.zapDomain, RoleSecurity.Domain.clients.rawValue)
            try pull.set(.zapEnforceDomain, true)
            return (pull, try pull.bind("tcp://127.0.0.1:0"))
        }
        /// The handshake's verdict; a server that drops the connection without one counts as a
        /// rejection too (nil).
        func handshake(_ endpoint: String) throws -> MonitorEvent.Kind? {
            // The peer in a context of its own, as another process would be.
            let push = try curveSocket(Context(), .push, key: client, serverKey: Z85.decode(server.publicKey)!)
            let monitor = try push.monitor()
            try push.connect(endpoint)
            return try monitor.waitFor([.handshakeSucceeded, .handshakeFailedAuth, .handshakeFailedNoDetail, .handshakeFailedProtocol],
                                       timeout: .seconds(3))?.kind
        }
        // No handler at all: rejected.
        let (first, noHandler) = try curveServer()
        let verdict = try handshake(noHandler)
        #expect(verdict != nil && verdict != .handshakeSucceeded, "\(String(describing: verdict))")

        // A handler that allows the key: accepted. The same handler crashed: rejected again.
        let authenticator = try await ZAPAuthenticator.ensure(in: context, allowed: [.clients: [Z85.decode(client.publicKey)!]],
                                                              logger: .init(label: "t"))
        let (second, withHandler) = try curveServer()
        #expect(try handshake(withHandler) == .handshakeSucceeded)
        await authenticator.stop()
        let (third, afterCrash) = try curveServer()
        let last = try handshake(afterCrash)
        #expect(last != nil && last != .handshakeSucceeded, "\(String(describing: last))")
        for socket in [first, second, third] { socket.close() }
    }

    @Test func selfTestRefusesAServerThatFailsOpen() throws {
        let keys = try TestKeys()
        let server = try keys.pair("sink")
        let context = try Context()
        // CURVE without ZAP domain enforcement accepts any key (libzmq's fallback).
        let open = try Socket(context, .pull)
        try open.set(.curveServer, true)
        try open.set(.curveSecretKey, Z85.decode(server.secretKey)!)
        let endpoint = try open.bind("tcp://127.0.0.1:0")
        let security = try #require(try RoleSecurity.load(keys.directTopology(), role: .sink))
        let factory = SocketFactory(context: context, topology: keys.directTopology(), security: security)
        #expect { try factory.verifyRejectsStrangers(.pull, boundAt: endpoint) } throws: { ($0 as? SecurityError)?.code == .failsOpen }
    }

    @Test func plaintextPeerToCurveServerFailsAndTheServerLives() async throws {
        let keys = try TestKeys()
        let (sink, endpoints, topology) = try await startSink(keys)
        let context = try Context()
        let plain = try Socket(context, .push)
        let monitor = try plain.monitor()
        try plain.connect(endpoints.results)
        let verdict = try monitor.waitFor([.handshakeSucceeded, .handshakeFailedProtocol, .handshakeFailedNoDetail, .handshakeFailedAuth,
                                           .disconnected], timeout: .seconds(10))
        #expect(verdict != nil && verdict?.kind != .handshakeSucceeded)
        #expect(try plain.trySend(multipart: [[1]]) == false)

        // The sink still serves a proper secure mesh.
        let worker = try await InProcessMesh.startEchoWorker(topology)
        let client = try await Client.connect(topology: topology)
        try await client.waitForWorkers(1, timeout: .seconds(10))
        #expect(try await client.submit("echo", [9]) == [9])
        await client.close()
        await worker.stop()
        await sink.stop()
    }

    @Test func aClientKeyCannotPostResults() async throws {
        let keys = try TestKeys()
        let (sink, endpoints, _) = try await startSink(keys)
        let context = try Context()
        let forger = try curveSocket(context, .push, key: try keys.pair("client"), serverKey: try keys.publicKey("sink"))
        let monitor = try forger.monitor()
        try forger.connect(endpoints.results)
        #expect(try monitor.waitFor([.handshakeFailedAuth, .handshakeSucceeded], timeout: .seconds(10))?.kind == .handshakeFailedAuth)
        #expect(sink.stats.resultsForwarded == 0 && sink.stats.resultsDroppedNoClient == 0)
        await sink.stop()
    }

    @Test func anotherClientCannotReceiveOrSubmitUnderAClientsID() async throws {
        let keys = try TestKeys()
        let (sink, endpoints, topology) = try await startSink(keys)
        let worker = try await InProcessMesh.startEchoWorker(topology)
        let victim = try await Client.connect(topology: topology)
        try await victim.waitForWorkers(1, timeout: .seconds(10))
        let victimID = try #require(hexBytes(victim.id))
        let victimKey = try keys.publicKey("client")
        #expect(victimID.count == 40 && Array(victimID.prefix(32)) == victimKey, "a secure client id is its key and 8 random bytes")

        // Client B, allowlisted, claims the victim's id as its routing id and as a job's client id.
        let context = try Context()
        let thief = try curveSocket(context, .dealer, key: try keys.pair("client-b"), serverKey: try keys.publicKey("sink"))
        try thief.set(.routingID, victimID)
        try thief.connect(endpoints.clients)
        try thief.send(HelloMessage().encode())
        let forgedJob = try curveSocket(context, .push, key: try keys.pair("client-b"), serverKey: try keys.publicKey("worker"))
        try forgedJob.connect(try #require(worker.endpoint))
        try forgedJob.send(JobMessage(clientID: victimID, jobID: [0, 0, 0, 0, 0, 0, 0, 1], handler: "echo",
                                                 deadline: 0, attempt: 1, payload: Array("forged".utf8)).encode())

        for i in 0..<50 {
            #expect(try await victim.submit("echo", [UInt8(i)]) == [UInt8(i)])
        }
        try thief.set(.receiveTimeout, .milliseconds(300))
        let stolen = try? await receiveOffPool(thief)
        #expect(stolen == nil, "the thief received something")
        try await eventually("the worker dropped the forged job") { worker.stats.malformed >= 1 }
        #expect(victim.stats.droppedLateOrDuplicate == 0, "no forged result reached the victim")
        await victim.close()
        await worker.stop()
        await sink.stop()
    }

    @Test func reloadedAllowlistTurnsARemovedKeyAway() async throws {
        let keys = try TestKeys()
        let allowed = keys.path("allowed-clients")
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
        for name in ["client", "client-b"] {
            try FileManager.default.copyItem(atPath: keys.path("\(name).pub"), toPath: "\(allowed)/\(name).pub")
        }
        var topology = keys.directTopology()
        topology.security?.allowedClients = [allowed]
        let sink = try await InProcessMesh.startSink(&topology)
        let worker = try await InProcessMesh.startEchoWorker(topology)
        var topologyB = topology
        topologyB.security?.keys[.client] = keys.path("client-b.key")
        let before = try await Client.connect(topology: topologyB)
        try await before.waitForWorkers(1, timeout: .seconds(10))
        #expect(try await before.submit("echo", [1]) == [1])
        await before.close()

        try FileManager.default.removeItem(atPath: "\(allowed)/client-b.pub")
        try sink.reloadAllowlists()
        try worker.reloadAllowlists()
        let rejected = sink.stats.rejectedPeers

        // The removed key cannot connect any more; the remaining key still can.
        let after = try await Client.connect(topology: topologyB)
        await #expect(throws: JobError.self) { try await after.waitForWorkers(1, timeout: .seconds(2)) }
        try await eventually("the sink turned the removed key away") { sink.stats.rejectedPeers > rejected }
        let a = try await Client.connect(topology: topology)
        try await a.waitForWorkers(1, timeout: .seconds(10))
        #expect(try await a.submit("echo", [2]) == [2])
        await after.close()
        await a.close()
        await worker.stop()
        await sink.stop()
    }

    @Test func plaintextBeyondLoopbackNeedsInsecure() throws {
        var topology = Topology.loopback(port: 5701)
        topology.sink?.resultsBind = "tcp://*:5701"
        #expect { try checkPlaintext(topology, endpoints: [try #require(topology.sink).resultsBind], logger: .init(label: "t")) } throws: {
            ($0 as? SecurityError)?.code == .plaintextOffLoopback
        }
        topology.insecure = true
        try checkPlaintext(topology, endpoints: [try #require(topology.sink).resultsBind], logger: .init(label: "t"))
        #expect(isLoopback("tcp://127.0.0.1:1") && isLoopback("tcp://localhost:1") && isLoopback("tcp://[::1]:1"))
        #expect(isLoopback("ipc:///tmp/x") && isLoopback("inproc://x"))
        #expect(!isLoopback("tcp://192.0.2.1:1") && !isLoopback("tcp://*:1") && !isLoopback("tcp://0.0.0.0:1"))
    }
}

/// Bytes from the lowercase hex a `JobID` prints for non-text ids.
func hexBytes(_ hex: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) ?? hex.endIndex
        guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}
