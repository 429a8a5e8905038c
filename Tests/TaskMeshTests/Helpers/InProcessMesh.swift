import Testing
@testable import TaskMesh

/// Roles started in the test's own process, for tests that reach into them.
enum InProcessMesh {
    /// Starts a sink for `topology` and points the topology's sink endpoints at the ones it
    /// bound (ports picked by the system), so roles made from it afterwards reach it.
    static func startSink(_ topology: inout Topology) async throws -> Sink {
        let sink = try Sink(topology: topology)
        try await sink.start()
        let endpoints = try #require(sink.endpoints)
        topology.sink?.resultsEndpoint = endpoints.results
        topology.sink?.clientsEndpoint = endpoints.clients
        return sink
    }

    /// Starts a worker for `topology` whose one handler, `echo`, returns its payload.
    static func startEchoWorker(_ topology: Topology) async throws -> Worker {
        var handlers = Handlers()
        try handlers.register("echo") { $0.payload }
        let worker = try Worker(topology: topology, handlers: handlers)
        try await worker.start()
        return worker
    }
}
