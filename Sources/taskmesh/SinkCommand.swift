import ArgumentParser
import Logging
import ServiceLifecycle
import TaskMesh

struct SinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "Run the sink of a direct-mode mesh: the stable endpoint that routes results to clients.",
        discussion: "Stops on SIGTERM or SIGINT. SIGHUP reloads the allowlists of a secure topology.")

    @OptionGroup var topologyOptions: TopologyOptions
    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        let logger = logOptions.bootstrap(label: "taskmesh.sink")
        let topology = try topologyOptions.load(role: .sink)
        guard topology.mode == .direct else {
            throw ValidationError("a sink serves direct mode; the topology's mode is \(topology.mode.rawValue)")
        }
        let sink = try Sink(topology: topology, logger: logger)
        try await sink.start()
        if let endpoints = sink.endpoints { announceReady("results=\(endpoints.results) clients=\(endpoints.clients)") }
        let hangup = onHangup(logger: logger) { try sink.reloadAllowlists() }
        defer { hangup.cancel() }
        let supervisorWatch = stopWhenSupervisorIsGone(logger: logger)
        defer { supervisorWatch?.cancel() }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: sink)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        let stats = sink.stats
        logger.info("sink stopped", metadata: [
            "forwarded": "\(stats.resultsForwarded)", "droppedNoClient": "\(stats.resultsDroppedNoClient)",
            "droppedClientBusy": "\(stats.resultsDroppedClientBusy)", "malformed": "\(stats.malformed)",
        ])
    }
}
