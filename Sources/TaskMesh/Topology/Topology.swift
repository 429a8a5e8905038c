/// A mesh's shape and tuning, as read from a topology file (docs/TOPOLOGY.md documents every
/// field). The same client and worker code runs under every topology; only this value changes.
public struct Topology: Sendable, Equatable {
    /// How jobs travel.
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// Every role in one process over `inproc://`: no ports, no files. The embedded default.
        case local
        /// Brokerless mesh over tcp or ipc: clients push jobs straight to workers; a sink routes
        /// results back and keeps the membership. At most once execution.
        case direct
        /// Through a broker with heartbeats, leases and retries. At least once execution.
        case reliable
    }

    /// The sink of direct mode: the one stable endpoint.
    public struct Sink: Sendable, Equatable {
        /// Where the sink listens for workers (results, announcements), e.g. `tcp://*:5701`.
        public var resultsBind: String
        /// Where the sink listens for clients (results out, membership), e.g. `tcp://*:5702`.
        public var clientsBind: String
        /// How workers reach `resultsBind`, e.g. `tcp://sink.example:5701`.
        public var resultsEndpoint: String
        /// How clients reach `clientsBind`.
        public var clientsEndpoint: String

        public init(resultsBind: String, clientsBind: String, resultsEndpoint: String, clientsEndpoint: String) {
            self.resultsBind = resultsBind
            self.clientsBind = clientsBind
            self.resultsEndpoint = resultsEndpoint
            self.clientsEndpoint = clientsEndpoint
        }

        /// The sink of local mode: `inproc://taskmesh-sink-results` and `inproc://taskmesh-sink-clients`.
        public static let inProcess = Sink(
            resultsBind: "inproc://taskmesh-sink-results", clientsBind: "inproc://taskmesh-sink-clients",
            resultsEndpoint: "inproc://taskmesh-sink-results", clientsEndpoint: "inproc://taskmesh-sink-clients")

        /// A sink on 127.0.0.1 at `port` (results) and `port + 1` (clients).
        public static func loopback(port: Int) -> Sink {
            Sink(resultsBind: "tcp://127.0.0.1:\(port)", clientsBind: "tcp://127.0.0.1:\(port + 1)",
                 resultsEndpoint: "tcp://127.0.0.1:\(port)", clientsEndpoint: "tcp://127.0.0.1:\(port + 1)")
        }
    }

    /// The broker of reliable mode.
    public struct Broker: Sendable, Equatable {
        /// Where the broker listens for clients, and how clients reach it.
        public var clientsBind: String
        public var clientsEndpoint: String
        /// Where the broker listens for workers, and how workers reach it.
        public var workersBind: String
        public var workersEndpoint: String
        /// How many times a job is started before it ends as `attemptsExhausted`.
        public var maxAttempts: Int
        /// How long one attempt may run before the broker gives it to another worker, even while
        /// its worker still heartbeats (a hung handler).
        public var lease: Duration
        /// Jobs the broker holds (queued and running); past it, submits fail with `overloaded`.
        public var queueLimit: Int
        /// How long the broker remembers a finished job's outcome, to answer a resubmission of
        /// the same job id without running it again.
        public var resultTTL: Duration
        /// How long a job whose handler (or required labels) no live worker has waits for such a
        /// worker to join before it ends `noWorkers`; a shorter job deadline ends it sooner.
        public var unroutableTimeout: Duration

        public init(clientsBind: String, clientsEndpoint: String, workersBind: String, workersEndpoint: String,
                    maxAttempts: Int = 3, lease: Duration = .seconds(30), queueLimit: Int = 100_000,
                    resultTTL: Duration = .seconds(300), unroutableTimeout: Duration = .seconds(60)) {
            self.clientsBind = clientsBind
            self.clientsEndpoint = clientsEndpoint
            self.workersBind = workersBind
            self.workersEndpoint = workersEndpoint
            self.maxAttempts = maxAttempts
            self.lease = lease
            self.queueLimit = queueLimit
            self.resultTTL = resultTTL
            self.unroutableTimeout = unroutableTimeout
        }

        /// A broker on 127.0.0.1 at `port` (clients) and `port + 1` (workers).
        public static func loopback(port: Int) -> Broker {
            Broker(clientsBind: "tcp://127.0.0.1:\(port)", clientsEndpoint: "tcp://127.0.0.1:\(port)",
                   workersBind: "tcp://127.0.0.1:\(port + 1)", workersEndpoint: "tcp://127.0.0.1:\(port + 1)")
        }
    }

    /// How workers listen and run jobs.
    public struct Worker: Sendable, Equatable {
        /// Where a worker binds its job socket; port 0 picks a free port.
        public var bind: String
        /// The host name or address clients use to reach this worker (replaces the bind host in
        /// the advertised endpoint). Nil: the bind host, or this machine's host name for a
        /// wildcard bind.
        public var advertiseHost: String?
        /// How many jobs a worker runs at once, 1 to `maximumConcurrency`.
        public var concurrency: Int
        /// The most jobs one worker may run at once: each runs in a task of its own, and
        /// concurrency plus prefetch travel as one 16-bit credit.
        public static let maximumConcurrency = Int(UInt16.max) / 2
        /// The most worker processes `taskmesh up` starts from one file.
        public static let maximumProcesses = 1024
        /// How many jobs a worker takes beyond those it runs, so that it never waits for the
        /// network between jobs; nil: the mode's default. In reliable mode this is credit beyond
        /// `concurrency`: a prefetched job's lease runs while it waits, and a slow worker holds
        /// up to this many jobs that an idle one could run. Unset in reliable mode, a worker
        /// sizes it from how long its jobs take and how big they are: about 2 ms of work, at most
        /// 4096 jobs and 16 MiB of payload (`WorkerCredit`).
        public var prefetch: Int?
        /// How long a stopping worker waits for running jobs before it exits.
        public var drainTimeout: Duration
        /// How many worker processes `taskmesh up` starts on this machine.
        public var processes: Int
        /// What this worker offers beyond its handlers, e.g. `gpu` or `region-eu`: only jobs whose
        /// `JobOptions.requires` are all among them may go to it.
        public var labels: Set<String>

        public init(bind: String, advertiseHost: String? = nil, concurrency: Int = 4, prefetch: Int? = nil,
                    drainTimeout: Duration = .seconds(10), processes: Int = 2, labels: Set<String> = []) {
            self.bind = bind
            self.advertiseHost = advertiseHost
            self.concurrency = concurrency
            self.prefetch = prefetch
            self.drainTimeout = drainTimeout
            self.processes = processes
            self.labels = labels
        }

        /// `prefetch` when set, else the default for `mode`: in direct and local mode
        /// `max(32, concurrency)` (clients push round robin whatever a worker holds, so reading
        /// ahead costs no balance); in reliable mode 0, the part a worker offers before it has
        /// timed its jobs (then `WorkerCredit` sizes it: about 2 ms of work), so a slow worker
        /// collects no backlog.
        public func prefetch(concurrency: Int, mode: Mode) -> Int {
            prefetch ?? (mode == .reliable ? 0 : max(32, concurrency))
        }
    }

    /// Client defaults.
    public struct Client: Sendable, Equatable {
        /// The deadline of a job that names none: after it, the job's outcome is `timedOut`.
        public var deadline: Duration
        /// At most this many jobs pending (queued or in flight) per client; past it, submit fails
        /// fast with `overloaded`.
        public var maxPending: Int
        /// How long a caller awaiting its client's only pending job keeps checking for the
        /// outcome on its own thread before it suspends. A result that arrives within it reaches
        /// the caller without a thread wake-up, which is most of a short job's round trip; the
        /// price is up to this much CPU time per such job. Zero: always suspend at once. At most
        /// `maximumSpinWait` is used, and none on a machine with one processor.
        public var spinWait: Duration
        /// Direct and local mode: a job whose handler (or required labels) no live worker has
        /// waits for such a worker up to its deadline (and then ends `noWorkers`) instead of
        /// ending `noWorkers` at once. Reliable mode always waits (`broker.unroutable_timeout`).
        public var waitForWorkers: Bool

        /// The longest `spinWait` a topology may ask for.
        public static let maximumSpinWait: Duration = .milliseconds(10)

        public init(deadline: Duration = .seconds(30), maxPending: Int = 100_000, spinWait: Duration = .microseconds(300),
                    waitForWorkers: Bool = false) {
            self.deadline = deadline
            self.maxPending = maxPending
            self.spinWait = spinWait
            self.waitForWorkers = waitForWorkers
        }
    }

    /// Liveness settings shared by every role.
    public struct Heartbeat: Sendable, Equatable {
        /// How often roles announce themselves.
        public var interval: Duration
        /// A peer silent for `liveness` intervals is considered dead.
        public var liveness: Int

        public init(interval: Duration = .seconds(1), liveness: Int = 3) {
            self.interval = interval
            self.liveness = liveness
        }

        /// How long a peer may stay silent before it is considered dead.
        public var expiry: Duration { interval * liveness }
    }

    /// Size and queue bounds.
    public struct Limits: Sendable, Equatable {
        /// The largest job payload or result accepted, in bytes.
        public var maxPayload: Int
        /// ZeroMQ high-water marks (messages per peer) for sending and receiving sockets.
        public var sendHighWaterMark: Int
        public var receiveHighWaterMark: Int

        public init(maxPayload: Int = 16 * 1024 * 1024, sendHighWaterMark: Int = 10_000, receiveHighWaterMark: Int = 10_000) {
            self.maxPayload = maxPayload
            self.sendHighWaterMark = sendHighWaterMark
            self.receiveHighWaterMark = receiveHighWaterMark
        }
    }

    /// Where clients and workers meet; the mode follows from it.
    public enum Hub: Sendable, Equatable {
        /// Local mode: every role in this process, meeting at a sink over `inproc://` endpoints.
        case local(Sink)
        /// Direct mode: clients push jobs straight to workers; this sink routes results back and
        /// keeps the membership.
        case sink(Sink)
        /// Reliable mode: clients and workers meet at this broker.
        case broker(Broker)
    }

    public var hub: Hub
    /// CURVE keys and allowlists; nil: plaintext.
    public var security: Security?
    /// Allows plaintext tcp on addresses other than loopback (a warning is printed at start).
    /// Without it, such a topology needs a `security` section.
    public var insecure: Bool = false
    public var worker: Worker
    public var client: Client
    public var heartbeat: Heartbeat
    public var limits: Limits

    public init(hub: Hub, worker: Worker, client: Client = Client(), heartbeat: Heartbeat = Heartbeat(),
                limits: Limits = Limits()) {
        self.hub = hub
        self.worker = worker
        self.client = client
        self.heartbeat = heartbeat
        self.limits = limits
    }

    /// How jobs travel, which the hub decides.
    public var mode: Mode {
        switch hub {
        case .local: .local
        case .sink: .direct
        case .broker: .reliable
        }
    }

    /// The sink of a local or direct topology; nil in reliable mode. Setting it (or one of its
    /// fields, through `topology.sink?.field = ...`) changes that sink and never the mode: it is
    /// ignored in reliable mode, and so is setting nil.
    public var sink: Sink? {
        get {
            switch hub {
            case .local(let sink), .sink(let sink): sink
            case .broker: nil
            }
        }
        set {
            guard let newValue else { return }
            switch hub {
            case .local: hub = .local(newValue)
            case .sink: hub = .sink(newValue)
            case .broker: return
            }
        }
    }

    /// The broker of a reliable topology; nil in local and direct mode. Setting it changes that
    /// broker and never the mode, as for `sink`.
    public var broker: Broker? {
        get {
            guard case .broker(let broker) = hub else { return nil }
            return broker
        }
        set {
            guard let newValue, case .broker = hub else { return }
            hub = .broker(newValue)
        }
    }

    /// The embedded default: everything in this process over inproc.
    public static let local = Topology(hub: .local(.inProcess), worker: Worker(bind: "inproc://taskmesh-worker"))

    /// Direct mode on this machine: a sink on 127.0.0.1 at `port` (results) and `port + 1`
    /// (clients); workers bind ephemeral loopback ports.
    public static func loopback(port: Int) -> Topology {
        Topology(hub: .sink(.loopback(port: port)), worker: Worker(bind: "tcp://127.0.0.1:0"))
    }

    /// Reliable mode on this machine: a broker on 127.0.0.1 at `port` (clients) and `port + 1`
    /// (workers).
    public static func reliableLoopback(port: Int) -> Topology {
        Topology(hub: .broker(.loopback(port: port)), worker: Worker(bind: "tcp://127.0.0.1:0"))
    }
}

extension Topology.Hub {
    /// Where clients connect: the sink's client endpoint or the broker's.
    var clientsEndpoint: String {
        switch self {
        case .local(let sink), .sink(let sink): sink.clientsEndpoint
        case .broker(let broker): broker.clientsEndpoint
        }
    }
}

extension Topology {
    /// The sink a sink role serves. Throws for a reliable topology, whose hub is a broker.
    func sinkToServe() throws(TopologyError) -> Sink {
        guard let sink else {
            throw TopologyError(source: "topology", field: "mode",
                                message: "a sink serves local and direct mode; this topology is reliable, and its hub is a broker")
        }
        return sink
    }

    /// The broker a broker role serves. Throws for a local or direct topology, whose hub is a sink.
    func brokerToServe() throws(TopologyError) -> Broker {
        guard let broker else {
            throw TopologyError(source: "topology", field: "mode",
                                message: "a broker serves reliable mode; this topology is \(mode.rawValue), and its hub is a sink")
        }
        return broker
    }
}
