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

    @Option(help: ArgumentHelp("The sink's results endpoint, overriding the topology's sink.results.endpoint (direct mode).", valueName: "endpoint"))
    var sink: String?

    @Option(help: ArgumentHelp("The broker's workers endpoint, overriding broker.workers.endpoint (reliable mode).", valueName: "endpoint"))
    var broker: String?

    @Option(help: ArgumentHelp("Append every handler start (client id, job id, attempt) to this file, synced to disk.", valueName: "file"))
    var executionLog: String?

    @Flag(help: "Also register the handlers crash (kills this worker) and hang (never returns), to exercise fault handling.")
    var faultHandlers = false

    @Option(help: "Jobs run at once, overriding worker.concurrency.")
    var concurrency: Int?

    @Option(help: ArgumentHelp("Where to bind the job socket, overriding worker.bind.", valueName: "endpoint"))
    var bind: String?

    @Option(help: ArgumentHelp("Host name clients use to reach this worker, overriding worker.advertise_host.", valueName: "host"))
    var advertiseHost: String?

    @Option(name: .customLong("label"), help: ArgumentHelp(
        "A label this worker carries (repeatable), added to worker.labels: jobs that require it may run here.", valueName: "label"))
    var labels: [String] = []

    @Option(help: ArgumentHelp("Serve only these built-in handlers, comma-separated (default: all).", valueName: "names"))
    var handlers: String?

    func validate() throws {
        if let concurrency, !(1...Topology.Worker.maximumConcurrency).contains(concurrency) {
            throw ValidationError("--concurrency must be 1 to \(Topology.Worker.maximumConcurrency), got \(concurrency)")
        }
        for label in labels {
            if let problem = LabelRules.problem(with: label) { throw ValidationError("--label: \(problem)") }
        }
        if let handlers {
            let known = BuiltinHandlers.names + (faultHandlers ? BuiltinHandlers.faultNames : [])
            let names = handlers.split(separator: ",").map(String.init)
            guard !names.isEmpty else { throw ValidationError("--handlers needs at least one name (\(known.joined(separator: ", ")))") }
            for name in names where !known.contains(name) {
                throw ValidationError("--handlers: no built-in handler named \"\(name)\" (there are: \(known.joined(separator: ", ")))")
            }
        }
    }

    func run() async throws {
        let logger = logOptions.bootstrap(label: "taskmesh.worker")
        var topology = try topologyOptions.load(role: .worker)
        guard topology.mode != .local else {
            throw ValidationError("taskmesh worker joins a direct or reliable mesh; in local mode everything runs in one process (try taskmesh demo)")
        }
        try topology.point(sink: sink, broker: broker, sinkEndpoint: \.resultsEndpoint, brokerEndpoint: \.workersEndpoint)
        if let bind { topology.worker.bind = bind }
        if let advertiseHost { topology.worker.advertiseHost = advertiseHost }
        topology.worker.labels.formUnion(labels)
        var handlers = BuiltinHandlers.make()
        if faultHandlers { BuiltinHandlers.addFaultHandlers(to: &handlers) }
        if let only = self.handlers.map({ Set($0.split(separator: ",").map(String.init)) }) {
            for name in handlers.names where !only.contains(name) { handlers.remove(name) }
        }
        let worker = try Worker(topology: topology, handlers: handlers, concurrency: concurrency,
                                executionLog: executionLog, logger: logger)
        try await worker.start()
        announceReady("endpoint=\(worker.endpoint ?? "") id=\(worker.id)")
        let hangup = onHangup(logger: logger) { try worker.reloadAllowlists() }
        defer { hangup.cancel() }
        let supervisorWatch = stopWhenSupervisorIsGone(logger: logger)
        defer { supervisorWatch?.cancel() }
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
