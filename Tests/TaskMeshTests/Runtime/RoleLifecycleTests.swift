import Testing
@testable import TaskMesh

/// Sinks, brokers and workers have one lifecycle (idle, starting, running, stopping, stopped),
/// with defined answers to stop before start, a second start and a second stop.
struct RoleLifecycleTests {
    private func topology(_ mode: Topology.Mode = .direct) -> Topology {
        mode == .reliable ? Topology.reliableLoopback(port: 0) : Topology.loopback(port: 0)
    }

    @Test func stopBeforeStartReturnsAndTheRoleCannotStartAfter() async throws {
        let sink = try Sink(topology: topology())
        try await withDeadline(.seconds(5)) { await sink.stop() }
        #expect(sink.state == .stopped)
        await #expect(throws: RoleStateError(role: "sink", state: .stopped)) { try await sink.start() }

        let worker = try Worker(topology: topology(), handlers: Handlers())
        try await withDeadline(.seconds(5)) { await worker.stop() }
        #expect(worker.state == .stopped)
        let broker = try Broker(topology: topology(.reliable))
        try await withDeadline(.seconds(5)) { await broker.stop() }
        #expect(broker.state == .stopped)
    }

    @Test func aSecondStartThrowsAndASecondStopReturns() async throws {
        var settings = topology()
        settings.sink?.resultsBind = "tcp://127.0.0.1:0"
        settings.sink?.clientsBind = "tcp://127.0.0.1:0"
        let sink = try Sink(topology: settings)
        #expect(sink.state == .idle)
        try await sink.start()
        #expect(sink.state == .running)
        await #expect(throws: RoleStateError(role: "sink", state: .running)) { try await sink.start() }
        await sink.stop()
        #expect(sink.state == .stopped)
        try await withDeadline(.seconds(5)) { await sink.stop() }
    }

    @Test func aFailedStartLeavesTheRoleStoppedAndStopReturns() async throws {
        var settings = topology()
        settings.sink?.resultsBind = "tcp://no-such-interface-name:1"
        let sink = try Sink(topology: settings)
        await #expect(throws: (any Error).self) { try await sink.start() }
        #expect(sink.state == .stopped)
        try await withDeadline(.seconds(5)) { await sink.stop() }
    }

    /// Fails the test when `body` has not returned within `limit`.
    private func withDeadline(_ limit: Duration, _ body: @escaping @Sendable () async -> Void) async throws {
        let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { await body(); return true }
            group.addTask { try await Task.sleep(for: limit); return false }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        #expect(finished, "did not return within \(limit)")
    }
}
