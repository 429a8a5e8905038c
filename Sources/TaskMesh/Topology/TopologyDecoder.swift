/// Reads a topology file's parsed YAML through `TopologySchema`: the mode first, then the hub it
/// names, then every section, completing each with its defaults and checking what one field
/// cannot check alone.
struct TopologyDecoder {
    let source: String

    func decode(_ root: ConfigValue) throws(TopologyError) -> Topology {
        let topSection = try TopologySchema.top.section(root, source: source)
        let context = TopologyContext(source: source, mode: try TopologySchema.readMode(topSection))
        var top = TopologySchema.TopLevel()
        try TopologySchema.top.apply(topSection, to: &top, context)

        let hub = try hub(topSection, context)
        var worker = context.mode == .local ? Topology.local.worker : Topology.Worker(bind: TopologySchema.defaultWorkerBind)
        try TopologySchema.worker.read(topSection.value("worker"), into: &worker, context)
        var topology = Topology(hub: hub, worker: worker)
        try TopologySchema.client.read(topSection.value("client"), into: &topology.client, context)
        let heartbeat = try TopologySchema.heartbeat.read(topSection.value("heartbeat"), into: &topology.heartbeat, context)
        try checkExpiry(topology.heartbeat, heartbeat)
        try TopologySchema.limits.read(topSection.value("limits"), into: &topology.limits, context)
        topology.security = try security(topSection.value("security"), context)
        topology.insecure = top.insecure
        if context.mode == .local && topology.security != nil {
            throw topSection.error("security", "local mode runs over inproc inside one process; it has nothing to encrypt")
        }
        return topology
    }

    // MARK: Hubs

    private func hub(_ top: TopologySection, _ context: TopologyContext) throws(TopologyError) -> Topology.Hub {
        switch context.mode {
        case .reliable:
            if top.value("sink") != nil { throw top.error("sink", "reliable mode has no sink; its clients and workers meet at the broker") }
            return .broker(try broker(top.value("broker"), context))
        case .local, .direct:
            if top.value("broker") != nil { throw top.error("broker", "only reliable mode has a broker (mode: reliable)") }
            let sink = try sink(top.value("sink"), context)
            return context.mode == .local ? .local(sink) : .sink(sink)
        }
    }

    private func sink(_ value: ConfigValue?, _ context: TopologyContext) throws(TopologyError) -> Topology.Sink {
        let section = try TopologySchema.sink.section(value, source: source)
        let local = Topology.Sink.inProcess
        let results = try socket(TopologySchema.sinkResults, section.value("results"), context,
                                 localBind: local.resultsBind, example: "tcp://*:5701")
        let clients = try socket(TopologySchema.sinkClients, section.value("clients"), context,
                                 localBind: local.clientsBind, example: "tcp://*:5702")
        try checkApart(results.bind, clients.bind, field: "sink.clients.bind", from: "sink.results.bind")
        return Topology.Sink(resultsBind: results.bind.text, clientsBind: clients.bind.text,
                             resultsEndpoint: results.endpoint.text, clientsEndpoint: clients.endpoint.text)
    }

    private func broker(_ value: ConfigValue?, _ context: TopologyContext) throws(TopologyError) -> Topology.Broker {
        let section = try TopologySchema.broker.section(value, source: source)
        let clients = try socket(TopologySchema.brokerClients, section.value("clients"), context,
                                 localBind: nil, example: "tcp://*:5801")
        let workers = try socket(TopologySchema.brokerWorkers, section.value("workers"), context,
                                 localBind: nil, example: "tcp://*:5802")
        try checkApart(clients.bind, workers.bind, field: "broker.workers.bind", from: "broker.clients.bind")
        var broker = Topology.Broker(clientsBind: clients.bind.text, clientsEndpoint: clients.endpoint.text,
                                     workersBind: workers.bind.text, workersEndpoint: workers.endpoint.text)
        try TopologySchema.broker.apply(section, to: &broker, context)
        return broker
    }

    /// One hub socket: where it binds (in local mode `localBind` unless given; the broker, never
    /// local, has none) and how others reach it.
    private func socket(_ spec: TopologySectionSpec<HubSocketDraft>, _ value: ConfigValue?, _ context: TopologyContext,
                        localBind: String?, example: String) throws(TopologyError) -> (bind: TopologyEndpoint, endpoint: TopologyEndpoint) {
        var draft = HubSocketDraft()
        let section = try spec.read(value, into: &draft, context)
        let bind: TopologyEndpoint
        if let given = draft.bind {
            // Port 0 is allowed: the hub then reports the port it got on its `ready` line, and
            // workers and clients are pointed at it explicitly (scripts and tests do this).
            bind = given
        } else if context.mode == .local, let localBind {
            do { bind = try TopologyEndpoint.parse(localBind) } catch { throw section.error("bind", error.message) }
        } else {
            throw section.error("bind", "missing required field in \(context.mode.rawValue) mode (such as \"\(example)\")")
        }
        guard let given = draft.endpoint else { return (bind, bind.connectable) }
        if given.transport != bind.transport {
            throw section.error("endpoint", "must use the same transport as its bind (\"\(bind.text)\"), got \"\(given.text)\"")
        }
        if given.transport == .inproc && given != bind {
            throw section.error("endpoint", "an inproc endpoint must equal its bind (\"\(bind.text)\"), got \"\(given.text)\"")
        }
        if given.hasWildcardHost {
            throw section.error("endpoint", "must name a host others can connect to, not a wildcard, got \"\(given.text)\"")
        }
        if !given.hasFixedPort {
            throw section.error("endpoint", "must name the fixed port others connect to, got \"\(given.text)\"")
        }
        return (bind, given)
    }

    /// Refuses a hub whose two binds would compete for the same address.
    private func checkApart(_ first: TopologyEndpoint, _ second: TopologyEndpoint, field: String,
                            from other: String) throws(TopologyError) {
        let clash: Bool
        if first.transport == .tcp, second.transport == .tcp {
            let sameHost = first.host == second.host || first.hasWildcardHost || second.hasWildcardHost
            clash = sameHost && first.port == second.port && first.hasFixedPort
        } else {
            clash = first == second
        }
        guard clash else { return }
        throw TopologyError(source: source, field: field,
                            message: "must not share an address or port with \(other) (\"\(first.text)\"), got \"\(second.text)\"")
    }

    // MARK: Heartbeat and security

    private func checkExpiry(_ heartbeat: Topology.Heartbeat, _ section: TopologySection) throws(TopologyError) {
        let (seconds, attoseconds) = heartbeat.interval.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanoseconds.multipliedReportingOverflow(by: Int64(heartbeat.liveness)).overflow {
            throw section.error("liveness", "heartbeat.interval times liveness must stay below 292 years, got \(heartbeat.liveness)")
        }
    }

    private func security(_ value: ConfigValue?, _ context: TopologyContext) throws(TopologyError) -> Topology.Security? {
        guard let value else { return nil }
        var security = Topology.Security()
        let section = try TopologySchema.security.section(value, source: source)
        try TopologySchema.securityKeys.read(section.value("keys"), into: &security, context)
        try TopologySchema.securityServers.read(section.value("servers"), into: &security, context)
        try TopologySchema.securityAllow.read(section.value("allow"), into: &security, context)
        return security
    }
}
