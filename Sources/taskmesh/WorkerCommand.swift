import ArgumentParser
import Logging
import ServiceLifecycle
import TaskMesh

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker with the built-in handlers: \(BuiltinHandlers.names.joined(separator: ", ")).",
        discussion: """
        echo returns its payload; sleep waits for the milliseconds its payload spells; sha256 returns \
        the hex digest of its payload; fail always fails. On SIGTERM or SIGINT the worker leaves the \
        mesh, hands back jobs it has not started, finishes running ones within worker.drain_timeout \
        and exits.
        """)

    @OptionGroup var topologyOptions: TopologyOptions
    @OptionGroup var logOptions: LogOptions

    @Option(help: ArgumentHelp("The sink's results endpoint, overriding the topology's sink.results.endpoint.", valueName: "endpoint"))
    var sink: String?

    @Option(help: "Jobs run at once, overriding worker.concurrency.")
    var concurrency: Int?

    @Option(help: ArgumentHelp("Where to bind the job socket, overriding worker.bind.", valueName: "endpoint"))
    var bind: String?

    @Option(help: ArgumentHelp("Host name clients use to reach this worker, overriding worker.advertise_host.", valueName: "host"))
    var advertiseHost: String?

    func validate() throws {
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
    }

    func run() async throws {
        let logger = logOptions.bootstrap(label: "taskmesh.worker")
        var topology = try topologyOptions.load()
        guard topology.mode == .direct else {
            throw ValidationError("taskmesh worker joins a direct-mode mesh; the topology's mode is \(topology.mode.rawValue)")
        }
        if let sink { topology.sink.resultsEndpoint = sink }
        if let bind { topology.worker.bind = bind }
        if let advertiseHost { topology.worker.advertiseHost = advertiseHost }
        let worker = try Worker(topology: topology, handlers: BuiltinHandlers.make(), concurrency: concurrency, logger: logger)
        try await worker.start()
        announceReady("endpoint=\(worker.endpoint ?? "") id=\(worker.id)")
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: worker)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        let stats = worker.stats
        logger.info("worker stopped", metadata: [
            "succeeded": "\(stats.succeeded)", "failed": "\(stats.failed)", "declined": "\(stats.declined)",
            "malformed": "\(stats.malformed)",
        ])
    }
}
