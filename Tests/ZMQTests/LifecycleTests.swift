import Foundation
import Testing
import ZMQ

@Suite struct LifecycleTests {
    @Test func pollReturnsWhenItsTimeoutPasses() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        _ = try pull.bind(Transport.inproc.bindEndpoint())
        var poller = Poller()
        poller.add(pull)
        var ready = -1
        let took = try elapsed { ready = try poller.poll(timeout: .milliseconds(100)) }
        #expect(ready == 0)
        #expect(took >= .milliseconds(95))
        #expect(took < .seconds(3))
    }

    @Test func pollWakesOnSignalAndOnReadableSocket() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        let push = try Socket(context, .push)
        try pair(pull, push, over: .inproc)
        let signal = try Signal()
        var poller = Poller()
        let socketIndex = poller.add(pull)
        let signalIndex = poller.add(signal)

        signal.notify()
        signal.notify()
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(at: signalIndex).contains(.readable))
        signal.drain()

        try push.send([42])
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(at: socketIndex).contains(.readable))
        #expect(!poller.events(at: signalIndex).contains(.readable))
    }

    @Test func contextWithPendingMessageTerminatesWithinLinger() throws {
        let done = DispatchSemaphore(value: 0)
        let took = elapsed {
            Thread.detachNewThread {
                do {
                    var defaults = SocketDefaults.standard
                    defaults.linger = .milliseconds(300)
                    defaults.immediate = false  // queue the message to the absent peer
                    let context = try Context()
                    let push = try Socket(context, .push, defaults: defaults)
                    try push.connect("tcp://127.0.0.1:1")
                    try push.send([1, 2, 3], wait: false)
                    push.close()
                    // Releasing the last reference terminates the context (zmq_ctx_term).
                } catch {
                    Issue.record("setup failed: \(error)")
                }
                done.signal()
            }
            #expect(done.wait(timeout: .now() + 10) == .success, "zmq_ctx_term hung")
        }
        #expect(took >= .milliseconds(250))
        #expect(took < .seconds(5))
    }

    @Test func oversizedFrameDisconnectsOnlyItsSender() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        try pull.set(.maxMessageSize, 1024)
        let endpoint = try pull.bind("tcp://127.0.0.1:0")
        let monitor = try pull.monitor()

        let offender = try Socket(context, .push)
        try offender.connect(endpoint)
        try offender.set(.sendTimeout, .seconds(5))
        try offender.send([UInt8](repeating: 1, count: 4096))
        #expect(try monitor.waitFor([.disconnected], timeout: .seconds(10)) != nil)

        let good = try Socket(context, .push)
        try good.connect(endpoint)
        try good.set(.sendTimeout, .seconds(5))
        for i in 0..<3 { try good.send([UInt8(i)]) }
        let received = try (0..<3).map { _ in try receive(pull) }
        #expect(received == [[[0]], [[1]], [[2]]])
    }

    @Test func monitorReportsConnectionEvents() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        let endpoint = try pull.bind("tcp://127.0.0.1:0")
        let push = try Socket(context, .push)
        let monitor = try push.monitor()
        try push.connect(endpoint)
        let event = try monitor.waitFor([.handshakeSucceeded], timeout: .seconds(10))
        #expect(event?.endpoint == endpoint)
    }
}

@Suite struct ContextTerminationTests {
    /// `terminate` returns once the last queued message has left: the peer, in another
    /// context, has it before the call returns.
    @Test func terminateDeliversQueuedMessagesBeforeReturning() async throws {
        let receiver = try Context()
        let pull = try Socket(receiver, .pull)
        let endpoint = try pull.bind("tcp://127.0.0.1:0")
        let sender = try Context()
        var defaults = SocketDefaults.standard
        defaults.linger = .seconds(5)
        defaults.immediate = false
        let push = try Socket(sender, .push, defaults: defaults)
        try push.connect(endpoint)
        for i in 0..<1000 { try push.send(withUnsafeBytes(of: UInt32(i)) { Array($0) } + [UInt8](repeating: 7, count: 1024), wait: false) }
        push.close()
        #expect(await sender.terminate(waitingAtMost: .seconds(10)))
        try pull.set(.receiveTimeout, .milliseconds(0))
        var received = 0
        while (try? pull.receive()) != nil { received += 1 }
        // Everything left the sender; the receiver's I/O thread may still be reading the tail.
        try pull.set(.receiveTimeout, .seconds(5))
        while received < 1000, (try? pull.receive()) != nil { received += 1 }
        #expect(received == 1000)
        pull.close()
    }

    /// A socket left open keeps `zmq_ctx_term` waiting: `terminate` gives up after its timeout
    /// instead of hanging.
    @Test func terminateGivesUpOnAnOpenSocket() async throws {
        let context = try Context()
        let open = try Socket(context, .pull)
        _ = try open.bind("tcp://127.0.0.1:0")
        let clock = ContinuousClock()
        let start = clock.now
        let finished = await context.terminate(waitingAtMost: .milliseconds(200))
        #expect(!finished)
        // A generous bound: the point is that it returns at all, even on a loaded machine.
        #expect(clock.now - start < .seconds(60))
        open.close()  // lets the background termination end
        #expect(throws: ZMQError.self) { _ = try Socket(context, .pull) }
    }
}
