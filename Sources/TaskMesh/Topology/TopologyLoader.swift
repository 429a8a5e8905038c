public import Foundation
internal import Yams

extension Topology {
    /// The environment variable that names a topology file for `fromEnvironment(_:default:)`.
    public static let environmentVariable = "TASKMESH_TOPOLOGY"

    /// Reads and validates the topology file at `path` (docs/TOPOLOGY.md describes the format).
    ///
    /// Throws a `TopologyError` whose `source` is `path` when the file is missing, unreadable,
    /// not UTF-8, not valid YAML, or when any field is unknown, of the wrong type or out of range.
    /// A returned topology has passed every check the format defines.
    public static func load(path: String) throws(TopologyError) -> Topology {
        try load(path: path, namedBy: nil)
    }

    /// Validates a topology given as YAML text; `source` names it in errors.
    ///
    /// Same rules and errors as `load(path:)`, without the file.
    public static func parse(yaml: String, source: String = "<string>") throws(TopologyError) -> Topology {
        let root = try YAMLDocument.root(of: yaml, source: source)
        return try TopologyDecoder(source: source).decode(root)
    }

    /// The topology named by the `TASKMESH_TOPOLOGY` variable of `environment`, or `default` when
    /// the variable is unset or empty. A set variable that names a missing or invalid file is an
    /// error, never a silent fallback to `default`.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment,
        default: Topology = .local
    ) throws(TopologyError) -> Topology {
        guard let path = environment[environmentVariable], !path.isEmpty else { return `default` }
        return try load(path: path, namedBy: environmentVariable)
    }

    private static func load(path: String, namedBy variable: String?) throws(TopologyError) -> Topology {
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            let origin = variable.map { " (named by \($0))" } ?? ""
            throw TopologyError(source: path, field: nil, message: error.message + origin)
        }
        return try parse(yaml: text, source: path)
    }

    private static func readTextFile(_ path: String) throws(ValueProblem) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValueProblem("no such file")
        }
        if isDirectory.boolValue {
            throw ValueProblem("is a directory, not a topology file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValueProblem("cannot read the file (check its permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ValueProblem("is not UTF-8 text")
        }
        return text
    }
}

/// The topology file format: its sections and fields, their defaults and their rules.
struct TopologyDecoder {
    let source: String

    /// Every section's fields, by dotted section path; "" is the top level.
    static let schema: [String: [String]] = [
        "": ["mode", "sink", "broker", "worker", "client", "heartbeat", "limits", "security", "insecure"],
        "security": ["keys", "servers", "allow"],
        "security.keys": Topology.Role.allCases.map(\.rawValue),
        "security.servers": ["sink", "broker"],
        "security.allow": ["clients", "workers"],
        "broker": ["clients", "workers", "max_attempts", "lease", "queue_limit", "result_ttl", "unroutable_timeout"],
        "broker.clients": ["bind", "endpoint"],
        "broker.workers": ["bind", "endpoint"],
        "sink": ["results", "clients"],
        "sink.results": ["bind", "endpoint"],
        "sink.clients": ["bind", "endpoint"],
        "worker": ["bind", "advertise_host", "concurrency", "prefetch", "drain_timeout", "processes", "labels"],
        "client": ["deadline", "max_pending", "spin_wait", "wait_for_workers"],
        "heartbeat": ["interval", "liveness"],
        "limits": ["max_payload", "send_hwm", "receive_hwm"],
    ]

    /// The largest `limits.max_payload`.
    static let maximumPayload = 256 << 20
    /// The shortest `heartbeat.interval`.
    static let minimumHeartbeatInterval = Duration.milliseconds(10)
    /// Where workers bind in direct and reliable mode unless the file says otherwise.
    static let defaultWorkerBind = "tcp://127.0.0.1:0"

    func decode(_ root: ConfigValue) throws(TopologyError) -> Topology {
        let top = try section(root, "")
        let mode = try decodeMode(top)
        let sink: Topology.Sink
        let broker: Topology.Broker
        if mode == .reliable {
            if top.value("sink") != nil { throw top.error("sink", "reliable mode has no sink; its clients and workers meet at the broker") }
            sink = Topology.local.sink
            broker = try decodeBroker(section(top.value("broker"), "broker"), mode: mode)
        } else {
            if top.value("broker") != nil { throw top.error("broker", "only reliable mode has a broker (mode: reliable)") }
            sink = try decodeSink(section(top.value("sink"), "sink"), mode: mode)
            broker = .loopback(port: 5801)
        }
        var topology = Topology(
            mode: mode,
            sink: sink,
            worker: try decodeWorker(section(top.value("worker"), "worker"), mode: mode),
            client: try decodeClient(section(top.value("client"), "client")),
            heartbeat: try decodeHeartbeat(section(top.value("heartbeat"), "heartbeat")),
            limits: try decodeLimits(section(top.value("limits"), "limits")),
            broker: broker
        )
        topology.security = try decodeSecurity(top.value("security"))
        if let value = try top.bool("insecure") { topology.insecure = value }
        if mode == .local && topology.security != nil {
            throw top.error("security", "local mode runs over inproc inside one process; it has nothing to encrypt")
        }
        return topology
    }

    // MARK: Security

    /// Paths are taken relative to the topology file's folder.
    private func decodeSecurity(_ value: ConfigValue?) throws(TopologyError) -> Topology.Security? {
        guard let value else { return nil }
        let top = try section(value, "security")
        let keys = try section(top.value("keys"), "security.keys")
        let servers = try section(top.value("servers"), "security.servers")
        let allow = try section(top.value("allow"), "security.allow")
        var security = Topology.Security()
        for role in Topology.Role.allCases {
            if let path = try keys.string(role.rawValue, expected: "a path to a secret key file") {
                security.keys[role] = resolve(path)
            }
        }
        security.sinkPublicKey = try servers.string("sink", expected: "a path to a public key file").map(resolve)
        security.brokerPublicKey = try servers.string("broker", expected: "a path to a public key file").map(resolve)
        security.allowedClients = try paths(allow, "clients")
        security.allowedWorkers = try paths(allow, "workers")
        return security
    }

    private func paths(_ section: TopologySection, _ key: String) throws(TopologyError) -> [String] {
        guard let value = section.value(key) else { return [] }
        switch value {
        case .string(let path): return [resolve(path)]
        case .sequence(let items):
            var paths: [String] = []
            for item in items {
                guard case .string(let path) = item else {
                    throw section.error(key, "expected a list of key file or folder paths, got \(item.rendered) in it")
                }
                paths.append(resolve(path))
            }
            return paths
        default:
            throw section.error(key, "expected a key file or folder path, or a list of them, got \(value.rendered)")
        }
    }

    private func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/"), source.contains("/") else { return path }
        let folder = source[..<source.lastIndex(of: "/")!]
        return "\(folder)/\(path)"
    }

    // MARK: Broker

    private func decodeBroker(_ section: TopologySection, mode: Topology.Mode) throws(TopologyError) -> Topology.Broker {
        let local = Topology.local.sink
        let clients = try sinkEndpoints(self.section(section.value("clients"), "broker.clients"), mode: mode,
                                        localBind: local.clientsBind, example: "tcp://*:5801")
        let workers = try sinkEndpoints(self.section(section.value("workers"), "broker.workers"), mode: mode,
                                        localBind: local.resultsBind, example: "tcp://*:5802")
        if Self.clash(clients.bind, workers.bind) {
            throw TopologyError(source: source, field: "broker.workers.bind",
                                message: "must not share an address or port with broker.clients.bind (\"\(clients.bind.text)\"), got \"\(workers.bind.text)\"")
        }
        var broker = Topology.Broker(clientsBind: clients.bind.text, clientsEndpoint: clients.endpoint.text,
                                     workersBind: workers.bind.text, workersEndpoint: workers.endpoint.text)
        if let value = try section.int("max_attempts", in: 1...1000, expected: "an integer from 1 to 1000") {
            broker.maxAttempts = value
        }
        if let value = try section.duration("lease", positive: true) { broker.lease = value }
        if let value = try section.int("queue_limit", in: 1...Int.max, expected: "a positive integer") {
            broker.queueLimit = value
        }
        if let value = try section.duration("result_ttl", positive: true) { broker.resultTTL = value }
        if let value = try section.duration("unroutable_timeout", positive: true) { broker.unroutableTimeout = value }
        return broker
    }

    private func section(_ value: ConfigValue?, _ path: String) throws(TopologyError) -> TopologySection {
        try TopologySection(value, path: path, fields: Self.schema[path] ?? [], schema: Self.schema, source: source)
    }

    private func decodeMode(_ top: TopologySection) throws(TopologyError) -> Topology.Mode {
        let names = Topology.Mode.allCases.map(\.rawValue)
        let choices = "local, direct or reliable"
        guard let value = top.value("mode") else {
            throw top.error("mode", "missing required field (\(choices))")
        }
        if case .string(let text) = value, let mode = Topology.Mode(rawValue: text) {
            return mode
        }
        let hint = value.scalarText.flatMap { FieldSuggestion.closest(to: $0, among: names) }.map { " (did you mean \"\($0)\"?)" } ?? ""
        throw top.error("mode", "expected \(choices), got \(value.rendered)\(hint)")
    }

    // MARK: Sink

    private func decodeSink(_ sink: TopologySection, mode: Topology.Mode) throws(TopologyError) -> Topology.Sink {
        let local = Topology.local.sink
        let results = try sinkEndpoints(section(sink.value("results"), "sink.results"), mode: mode,
                                        localBind: local.resultsBind, example: "tcp://*:5701")
        let clients = try sinkEndpoints(section(sink.value("clients"), "sink.clients"), mode: mode,
                                        localBind: local.clientsBind, example: "tcp://*:5702")
        if Self.clash(results.bind, clients.bind) {
            throw TopologyError(source: source, field: "sink.clients.bind",
                                message: "must not share an address or port with sink.results.bind (\"\(results.bind.text)\"), got \"\(clients.bind.text)\"")
        }
        return Topology.Sink(resultsBind: results.bind.text, clientsBind: clients.bind.text,
                             resultsEndpoint: results.endpoint.text, clientsEndpoint: clients.endpoint.text)
    }

    /// One sink socket: where it binds and how others reach it.
    private func sinkEndpoints(_ section: TopologySection, mode: Topology.Mode, localBind: String,
                               example: String) throws(TopologyError) -> (bind: TopologyEndpoint, endpoint: TopologyEndpoint) {
        let bind: TopologyEndpoint
        if let given = try section.endpoint("bind") {
            // Port 0 is allowed: the sink then reports the port it got on its `ready` line, and
            // workers and clients are pointed at it explicitly (scripts and tests do this).
            try checkTransport(given, section, "bind", mode: mode)
            bind = given
        } else if mode == .local {
            do { bind = try TopologyEndpoint.parse(localBind) } catch { throw section.error("bind", error.message) }
        } else {
            throw section.error("bind", "missing required field in \(mode.rawValue) mode (such as \"\(example)\")")
        }
        guard let given = try section.endpoint("endpoint") else { return (bind, bind.connectable) }
        try checkTransport(given, section, "endpoint", mode: mode)
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

    /// Whether two bind endpoints would compete for the same address.
    private static func clash(_ a: TopologyEndpoint, _ b: TopologyEndpoint) -> Bool {
        guard a.transport == .tcp, b.transport == .tcp else { return a == b }
        let sameHost = a.host == b.host || a.hasWildcardHost || b.hasWildcardHost
        return sameHost && a.port == b.port && a.hasFixedPort
    }

    private func checkTransport(_ endpoint: TopologyEndpoint, _ section: TopologySection, _ key: String,
                                mode: Topology.Mode) throws(TopologyError) {
        switch mode {
        case .local where endpoint.transport != .inproc:
            throw section.error(key, "mode local runs in one process and uses inproc:// endpoints only, got \"\(endpoint.text)\"")
        case .direct where endpoint.transport == .inproc, .reliable where endpoint.transport == .inproc:
            throw section.error(key, "mode \(mode.rawValue) runs across processes and cannot use inproc:// (use tcp:// or ipc://), got \"\(endpoint.text)\"")
        default:
            return
        }
    }

    // MARK: Worker, client, heartbeat, limits

    private func decodeWorker(_ section: TopologySection, mode: Topology.Mode) throws(TopologyError) -> Topology.Worker {
        var worker = mode == .local ? Topology.local.worker : Topology.Worker(bind: Self.defaultWorkerBind)
        if let bind = try section.endpoint("bind") {
            try checkTransport(bind, section, "bind", mode: mode)
            worker.bind = bind.text
        }
        if let host = try section.string("advertise_host", expected: "a host name or address such as \"192.0.2.21\"") {
            try checkAdvertiseHost(host, section)
            guard worker.bind.hasPrefix("tcp://") else {
                throw section.error("advertise_host", "applies only to a tcp:// worker bind, but worker.bind is \"\(worker.bind)\"")
            }
            worker.advertiseHost = host
        }
        if let value = try section.int("concurrency", in: 1...Int.max, expected: "a positive integer") {
            worker.concurrency = value
        }
        if let value = try section.int("prefetch", in: 0...Int(UInt16.max) / 2, expected: "an integer from 0 to \(Int(UInt16.max) / 2)") {
            worker.prefetch = value
        }
        if let value = try section.duration("drain_timeout") {
            worker.drainTimeout = value
        }
        if let value = try section.int("processes", in: 1...Int.max, expected: "a positive integer") {
            worker.processes = value
        }
        if let labels = try section.labels("labels") { worker.labels = labels }
        return worker
    }

    private func checkAdvertiseHost(_ host: String, _ section: TopologySection) throws(TopologyError) {
        let key = "advertise_host"
        let got = ", got \"\(host)\""
        if host.isEmpty || host.contains(where: { $0 == " " || $0 == "\t" || $0.isNewline || $0 == "/" }) {
            throw section.error(key, "expected a host name or address such as \"192.0.2.21\"" + got)
        }
        if ["*", "0.0.0.0", "::", "[::]"].contains(host) {
            throw section.error(key, "must be an address that other hosts can reach, not a wildcard" + got)
        }
        let colons = host.filter { $0 == ":" }.count
        if !host.hasPrefix("[") && colons == 1 {
            throw section.error(key, "is a host name or address without a port (the port comes from worker.bind)" + got)
        }
        if !host.hasPrefix("[") && colons > 1 {
            throw section.error(key, "an IPv6 address is written in brackets, such as \"[2001:db8::21]\"" + got)
        }
        if host.hasPrefix("[") != host.hasSuffix("]") {
            throw section.error(key, "expected a host name or address such as \"192.0.2.21\"" + got)
        }
    }

    private func decodeClient(_ section: TopologySection) throws(TopologyError) -> Topology.Client {
        var client = Topology.Client()
        if let value = try section.duration("deadline", positive: true) {
            client.deadline = value
        }
        if let value = try section.int("max_pending", in: 1...Int.max, expected: "a positive integer") {
            client.maxPending = value
        }
        if let value = try section.duration("spin_wait", atMost: Topology.Client.maximumSpinWait) {
            client.spinWait = value
        }
        if let value = try section.bool("wait_for_workers") { client.waitForWorkers = value }
        return client
    }

    private func decodeHeartbeat(_ section: TopologySection) throws(TopologyError) -> Topology.Heartbeat {
        var heartbeat = Topology.Heartbeat()
        if let value = try section.duration("interval", atLeast: Self.minimumHeartbeatInterval) {
            heartbeat.interval = value
        }
        if let value = try section.int("liveness", in: 1...Int.max, expected: "a positive integer") {
            heartbeat.liveness = value
        }
        let (seconds, attoseconds) = heartbeat.interval.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanoseconds.multipliedReportingOverflow(by: Int64(heartbeat.liveness)).overflow {
            throw section.error("liveness", "heartbeat.interval times liveness must stay below 292 years, got \(heartbeat.liveness)")
        }
        return heartbeat
    }

    private func decodeLimits(_ section: TopologySection) throws(TopologyError) -> Topology.Limits {
        var limits = Topology.Limits()
        if let value = try section.size("max_payload", in: 1...Self.maximumPayload, rangeText: "from 1 byte to 256MiB") {
            limits.maxPayload = value
        }
        let watermarks = 0...Int(Int32.max)
        let expected = "an integer from 0 (unlimited) to \(Int32.max)"
        if let value = try section.int("send_hwm", in: watermarks, expected: expected) {
            limits.sendHighWaterMark = value
        }
        if let value = try section.int("receive_hwm", in: watermarks, expected: expected) {
            limits.receiveHighWaterMark = value
        }
        return limits
    }
}
