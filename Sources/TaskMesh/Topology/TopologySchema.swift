/// The topology file format, declared once: every section, every field with its reader, default
/// and row of docs/TOPOLOGY.md. `TopologyDecoder` reads files through it; a test holds the
/// document to it.
enum TopologySchema {
    /// Where workers bind in direct and reliable mode unless the file says otherwise.
    static let defaultWorkerBind = "tcp://127.0.0.1:0"
    /// The largest `limits.max_payload`.
    static let maximumPayload = 256 << 20
    /// The shortest `heartbeat.interval`.
    static let minimumHeartbeatInterval = Duration.milliseconds(10)

    /// The top level's own fields besides `mode`, which `TopologyDecoder` reads (with
    /// `readMode`) before anything else, since it decides what the sections allow.
    struct TopLevel: Sendable {
        var insecure = false
    }

    static let top = TopologySectionSpec<TopLevel>("", [
        TopologyField("mode", type: "`local`, `direct` or `reliable`", default: "required",
                      meaning: "how jobs travel") { _, _, _ throws(TopologyError) in
            // Read first, by TopologyDecoder through `readMode`.
        },
        .section("sink"), .section("broker"), .section("worker"), .section("client"), .section("heartbeat"),
        .section("limits"), .section("security"),
        .flag("insecure", \.insecure, default: "`false`",
              meaning: "allows plaintext tcp on addresses other than loopback (every role warns at start)"),
    ])

    // MARK: Hubs

    static let sink = TopologySectionSpec<HubSocketDraft>("sink", [.section("results"), .section("clients")])

    static let sinkResults = socket("sink.results",
        bind: ("local: `inproc://taskmesh-sink-results`; direct: **required**",
               "port `0` picks a free port, which the sink prints on its `ready` line; others must then be given it (`--sink`)",
               "where the sink listens for workers"),
        endpoint: ("the bind, with a wildcard host replaced by `127.0.0.1` (`[::]` by `[::1]`)",
                   "same transport as the bind; tcp: a concrete host and the fixed port; inproc: equal to the bind",
                   "how workers reach `sink.results.bind`"))

    static let sinkClients = socket("sink.clients",
        bind: ("local: `inproc://taskmesh-sink-clients`; direct: **required**",
               "as `sink.results.bind`; must not share an address or port with it",
               "where the sink listens for clients"),
        endpoint: ("as for `sink.results.endpoint`", "as for `sink.results.endpoint`", "how clients reach `sink.clients.bind`"))

    static let broker = TopologySectionSpec<Topology.Broker>("broker", [
        .section("clients"), .section("workers"),
        .integer("max_attempts", \.maxAttempts, in: 1...1000, expected: "an integer from 1 to 1000", default: "`3`",
                 constraints: "1 to 1000", meaning: "how many times one job is started at most"),
        .duration("lease", \.lease, positive: true, default: "`30s`", constraints: "more than 0",
                  meaning: "how long one attempt may run"),
        .integer("queue_limit", \.queueLimit, in: 1...Int.max, expected: "a positive integer", default: "`100000`",
                 constraints: "at least 1", meaning: "how many jobs the broker holds at once, queued and running together"),
        .duration("result_ttl", \.resultTTL, positive: true, default: "`5m`", constraints: "more than 0",
                  meaning: "how long the broker remembers a finished job's outcome"),
        .duration("unroutable_timeout", \.unroutableTimeout, positive: true, default: "`60s`", constraints: "more than 0",
                  meaning: "how long a job waits in the queue while no live worker has its handler"),
    ])

    static let brokerClients = socket("broker.clients",
        bind: ("**required**",
               "`tcp://` or `ipc://`; port `0` picks a free port, which `taskmesh broker` prints on its `ready clients=... workers=...` line; clients must then be given it (`taskmesh submit --broker`)",
               "where the broker listens for clients"),
        endpoint: ("the bind, with a wildcard host replaced by `127.0.0.1` (`[::]` by `[::1]`)",
                   "same transport as the bind; tcp: a concrete host and the fixed port",
                   "how clients reach `broker.clients.bind`"))

    static let brokerWorkers = socket("broker.workers",
        bind: ("**required**",
               "as `broker.clients.bind`; must not share an address or port with it; with port `0`, workers are given the port with `taskmesh worker --broker`",
               "where the broker listens for workers"),
        endpoint: ("as for `broker.clients.endpoint`", "as for `broker.clients.endpoint`", "how workers reach `broker.workers.bind`"))

    // MARK: Roles

    static let worker = TopologySectionSpec<Topology.Worker>("worker", [
        TopologyField("bind", type: "endpoint", default: "local: `inproc://taskmesh-worker`; direct, reliable: `tcp://127.0.0.1:0`",
                      constraints: "transport allowed by the mode; port `0` or `*` picks a free port",
                      meaning: "where each worker binds the socket it receives jobs on") { section, context, worker throws(TopologyError) in
            guard let bind = try section.endpoint("bind") else { return }
            try context.checkTransport(bind, section, "bind")
            worker.bind = bind.text
        },
        TopologyField("advertise_host", type: "host name or address", default: "none",
                      constraints: "no port, no wildcard, IPv6 in brackets; only with a `tcp://` bind",
                      meaning: "the host clients use to reach this machine's workers") { section, _, worker throws(TopologyError) in
            guard let host = try section.string("advertise_host", expected: "a host name or address such as \"192.0.2.21\"") else { return }
            try checkAdvertiseHost(host, section)
            guard worker.bind.hasPrefix("tcp://") else {
                throw section.error("advertise_host", "applies only to a tcp:// worker bind, but worker.bind is \"\(worker.bind)\"")
            }
            worker.advertiseHost = host
        },
        .integer("concurrency", \.concurrency, in: 1...Topology.Worker.maximumConcurrency,
                 expected: "an integer from 1 to \(Topology.Worker.maximumConcurrency)", default: "`4`",
                 constraints: "1 to \(Topology.Worker.maximumConcurrency)", meaning: "how many jobs one worker runs at once"),
        TopologyField("prefetch", type: "integer",
                      default: "direct, local: `max(32, concurrency)`; reliable: sized from the jobs (see text)",
                      constraints: "0 to \(maximumPrefetch)",
                      meaning: "jobs a worker takes beyond those it runs") { section, _, worker throws(TopologyError) in
            if let value = try section.int("prefetch", in: 0...maximumPrefetch, expected: "an integer from 0 to \(maximumPrefetch)") {
                worker.prefetch = value
            }
        },
        .duration("drain_timeout", \.drainTimeout, default: "`10s`", constraints: "at least 0",
                  meaning: "how long a stopping worker waits for its running jobs before it exits"),
        .integer("processes", \.processes, in: 1...Topology.Worker.maximumProcesses,
                 expected: "an integer from 1 to \(Topology.Worker.maximumProcesses)", default: "`2`",
                 constraints: "1 to \(Topology.Worker.maximumProcesses)", meaning: "how many worker processes `taskmesh up` starts on this machine"),
        TopologyField("labels", type: "list of labels", default: "`[]`",
                      constraints: "at most \(Capabilities.maxLabels); each 1 to 255 bytes of ASCII letters, digits, `.`, `_`, `-`, `:` or `/`",
                      meaning: "what this worker offers beyond its handlers") { section, _, worker throws(TopologyError) in
            if let labels = try section.labels("labels") { worker.labels = labels }
        },
    ])

    /// The largest `worker.prefetch`: credit travels as a u16 beside the concurrency.
    static let maximumPrefetch = Int(UInt16.max) / 2

    static let client = TopologySectionSpec<Topology.Client>("client", [
        .duration("deadline", \.deadline, positive: true, default: "`30s`", constraints: "more than 0",
                  meaning: "the deadline of a job that names none"),
        .integer("max_pending", \.maxPending, in: 1...Int.max, expected: "a positive integer", default: "`100000`",
                 constraints: "at least 1", meaning: "jobs queued or in flight per client"),
        .duration("spin_wait", \.spinWait, atMost: Topology.Client.maximumSpinWait, default: "`0.3ms`",
                  constraints: "`0s` to `\(ValueParsing.format(Topology.Client.maximumSpinWait))`",
                  meaning: "how long a caller awaiting its client's only pending job checks for the outcome"),
        .flag("wait_for_workers", \.waitForWorkers, default: "`false`", meaning: "direct and local mode"),
    ])

    static let heartbeat = TopologySectionSpec<Topology.Heartbeat>("heartbeat", [
        .duration("interval", \.interval, atLeast: minimumHeartbeatInterval, default: "`1s`",
                  constraints: "at least `\(ValueParsing.format(minimumHeartbeatInterval))`",
                  meaning: "how often roles announce themselves"),
        .integer("liveness", \.liveness, in: 1...Int.max, expected: "a positive integer", default: "`3`",
                 constraints: "at least 1", meaning: "a peer silent for `liveness` intervals"),
    ])

    static let limits = TopologySectionSpec<Topology.Limits>("limits", [
        TopologyField("max_payload", type: "size", default: "`16MiB`", constraints: "1 byte to `256MiB`",
                      meaning: "the largest job payload or result accepted") { section, _, limits throws(TopologyError) in
            if let value = try section.size("max_payload", in: 1...maximumPayload, rangeText: "from 1 byte to 256MiB") {
                limits.maxPayload = value
            }
        },
        .integer("send_hwm", \.sendHighWaterMark, in: 0...Int(Int32.max), expected: highWaterMarkRange,
                 default: "`10000`", constraints: "0 to \(Int32.max); 0 = unlimited", meaning: "ZeroMQ send high-water mark"),
        .integer("receive_hwm", \.receiveHighWaterMark, in: 0...Int(Int32.max), expected: highWaterMarkRange,
                 default: "`10000`", constraints: "0 to \(Int32.max); 0 = unlimited", meaning: "ZeroMQ receive high-water mark"),
    ])

    private static let highWaterMarkRange = "an integer from 0 (unlimited) to \(Int32.max)"

    // MARK: Security

    static let security = TopologySectionSpec<Topology.Security>("security", [
        .section("keys"), .section("servers"), .section("allow"),
    ])

    static let securityKeys = TopologySectionSpec<Topology.Security>("security.keys", Topology.Role.allCases.map { role in
        .keyFile(role.rawValue, \.keys[role], expected: "a path to a secret key file",
                 constraints: role == .sink ? "a secret key file (`taskmesh keygen`)" : "a secret key file",
                 meaning: role == .worker || role == .client ? "the secret key file \(role.rawValue)s use"
                     : "the secret key file the \(role.rawValue) uses")
    })

    static let securityServers = TopologySectionSpec<Topology.Security>("security.servers", [
        .keyFile("sink", \.sinkPublicKey, expected: "a path to a public key file", constraints: "a public key file",
                 meaning: "the public key of the sink"),
        .keyFile("broker", \.brokerPublicKey, expected: "a path to a public key file", constraints: "a public key file",
                 meaning: "the public key of the broker"),
    ])

    static let securityAllow = TopologySectionSpec<Topology.Security>("security.allow", [
        .keyFiles("clients", \.allowedClients, meaning: "public key files, or folders of `.pub` files, allowed to connect as clients"),
        .keyFiles("workers", \.allowedWorkers, meaning: "the same for workers"),
    ])

    // MARK: The whole format

    /// Every section's entry names, by dotted path: what `TopologySection` accepts and what an
    /// unknown key's hint searches.
    static let names: [String: [String]] = Dictionary(uniqueKeysWithValues: [
        (top.path, top.names), (sink.path, sink.names), (sinkResults.path, sinkResults.names),
        (sinkClients.path, sinkClients.names), (broker.path, broker.names), (brokerClients.path, brokerClients.names),
        (brokerWorkers.path, brokerWorkers.names), (worker.path, worker.names), (client.path, client.names),
        (heartbeat.path, heartbeat.names), (limits.path, limits.names), (security.path, security.names),
        (securityKeys.path, securityKeys.names), (securityServers.path, securityServers.names),
        (securityAllow.path, securityAllow.names),
    ])

    /// Every field's row in docs/TOPOLOGY.md, in the document's order.
    static let documentedFields: [TopologyFieldDoc] =
        top.documentedFields.filter { $0.path == "mode" } + sinkResults.documentedFields + sinkClients.documentedFields
        + brokerClients.documentedFields + brokerWorkers.documentedFields + broker.documentedFields
        + worker.documentedFields + client.documentedFields + heartbeat.documentedFields + limits.documentedFields
        + securityKeys.documentedFields + securityServers.documentedFields + securityAllow.documentedFields
        + top.documentedFields.filter { $0.path == "insecure" }
}
