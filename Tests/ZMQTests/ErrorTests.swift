import Testing
import ZMQ

@Suite struct ErrorTests {
    @Test func routerMandatoryReportsUnknownPeerAsHostUnreachable() throws {
        let context = try Context()
        let router = try Socket(context, .router)
        _ = try router.bind(Transport.inproc.bindEndpoint())
        do {
            try router.send(multipart: [Array("nobody".utf8), [1]], wait: false)
            Issue.record("a send to an unknown peer must not succeed silently")
        } catch {
            #expect(error.code == .hostUnreachable)
        }
    }

    @Test func nonBlockingSendIntoFullHighWaterMarkWouldBlock() throws {
        let context = try Context()
        let push = try Socket(context, .push)
        try push.set(.sendHighWaterMark, 5)
        let pull = try Socket(context, .pull)
        try pull.set(.receiveHighWaterMark, 5)
        try pair(pull, push, over: .tcp)
        // Wait for the connection: IMMEDIATE queues only to completed connections.
        try push.set(.sendTimeout, .seconds(5))
        try push.send([0])
        _ = try receive(pull)
        var sent = 0
        var blocked: ZMQError?
        while sent < 100_000 {
            do {
                try push.send([UInt8](repeating: 7, count: 1024), wait: false)
                sent += 1
            } catch {
                blocked = error
                break
            }
        }
        #expect(blocked?.code == .wouldBlock)
        #expect(sent < 100_000)
    }

    /// `trySend` answers false instead of throwing when libzmq would block. A PUSH with
    /// IMMEDIATE and no peer refuses every send at once; a full TCP queue is no fixture for
    /// this, since libzmq's I/O thread goes on moving queued messages into the kernel after the
    /// first refusal and room opens up again.
    @Test func trySendAnswersFalseWhereASendWouldBlock() throws {
        let context = try Context()
        let push = try Socket(context, .push)
        try push.set(.linger, .zero)
        try push.set(.immediate, true)
        #expect(try push.trySend(multipart: [[1]]) == false)
    }

    @Test func pushWithoutPeersWouldBlockThanksToImmediate() throws {
        let context = try Context()
        let push = try Socket(context, .push)
        try push.connect("tcp://127.0.0.1:1")  // nothing listens there
        #expect(try push.trySend(multipart: [[1]]) == false)
    }

    @Test func blockingReceiveHonoursItsTimeout() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        _ = try pull.bind(Transport.inproc.bindEndpoint())
        try pull.set(.receiveTimeout, .milliseconds(50))
        #expect { try pull.receive() } throws: { ($0 as? ZMQError)?.code == .wouldBlock }
    }

    @Test func closedSocketFailsWithWrongState() throws {
        let context = try Context()
        let socket = try Socket(context, .push)
        socket.close()
        socket.close()
        #expect(socket.isClosed)
        #expect { try socket.send([1]) } throws: { ($0 as? ZMQError)?.code == .wrongState }
    }

    @Test func badEndpointsAreInvalidArguments() throws {
        let context = try Context()
        let socket = try Socket(context, .pull)
        #expect { try socket.bind("nonsense") } throws: { ($0 as? ZMQError)?.code == .invalidArgument }
        #expect { try socket.connect("tcp://") } throws: { ($0 as? ZMQError)?.code == .invalidArgument }
        #expect { try socket.disconnect("tcp://127.0.0.1:9") } throws: { ($0 as? ZMQError)?.code == .notFound }
    }

    @Test func portInUseIsAddressInUse() throws {
        let context = try Context()
        let first = try Socket(context, .pull)
        let endpoint = try first.bind("tcp://127.0.0.1:0")
        let second = try Socket(context, .pull)
        #expect { try second.bind(endpoint) } throws: { ($0 as? ZMQError)?.code == .addressInUse }
    }

    @Test func shutdownUnblocksWithContextTerminated() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        _ = try pull.bind(Transport.inproc.bindEndpoint())
        context.shutdown()
        #expect { try pull.receive() } throws: { ($0 as? ZMQError)?.code == .contextTerminated }
        // A reading loop tells this from a bad message: it ends the socket.
        #expect { try pull.tryReceive() } throws: { ($0 as? ZMQError)?.endsTheSocket == true }
        #expect(!ZMQError(.tooManyFrames, message: "a message of 3 frames").endsTheSocket)
    }

    @Test func capabilityGateRefusesOldLibraries() throws {
        try LibZMQ.requireSupported()
        #expect(LibZMQ.version >= LibZMQ.minimumVersion)
        let old = LibZMQ.Version(major: 4, minor: 3, patch: 2)
        #expect { try LibZMQ.requireSupported(actual: old) } throws: { ($0 as? ZMQError)?.code == .unsupportedLibrary }
        #expect { try LibZMQ.requireCurve(available: false) } throws: { ($0 as? ZMQError)?.code == .unsupportedLibrary }
        #expect(LibZMQ.has("ipc"))
    }
}
