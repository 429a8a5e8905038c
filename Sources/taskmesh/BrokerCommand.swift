import ArgumentParser
import Logging
import ServiceLifecycle
import TaskMesh

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the broker of a reliable-mode mesh: queue, leases, retries and dedup.",
        discussion: "Prints \"ready clients=ENDPOINT workers=ENDPOINT\" once listening. Stops on SIGTERM or SIGINT; SIGHUP reloads the allowlists of a secure topology.")

    @OptionGroup var topologyOptions: TopologyOptions
    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        let logger = logOptions.bootstrap(label: "taskmesh.broker")
        let topology = try topologyOptions.load(role: .broker)
        guard topology.mode == .reliable else {
            throw ValidationError("a broker serves reliable mode; the topology's mode is \(topology.mode.rawValue)")
        }
        let broker = try Broker(topology: topology, logger: logger)
        try await broker.start()
        if let endpoints = broker.endpoints { announceReady("clients=\(endpoints.clients) workers=\(endpoints.workers)") }
        let hangup = onHangup(logger: logger) { try broker.reloadAllowlists() }
        defer { hangup.cancel() }
        let supervisorWatch = stopWhenSupervisorIsGone(logger: logger)
        defer { supervisorWatch?.cancel() }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: broker)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        let stats = broker.stats
        logger.info("broker stopped", metadata: [
            "completed": "\(stats.completed)", "requeued": "\(stats.requeued)", "exhausted": "\(stats.exhausted)",
            "stale": "\(stats.staleResults)", "malformed": "\(stats.malformed)",
        ])
    }
}
