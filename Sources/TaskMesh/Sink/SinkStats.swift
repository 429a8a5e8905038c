/// Counters a sink keeps since it started. A snapshot; read it with `Sink.stats`.
public struct SinkStats: Sendable, Equatable {
    /// Results forwarded to their client.
    public var resultsForwarded: UInt64 = 0
    /// Results whose client is not connected (gone or never seen): dropped.
    public var resultsDroppedNoClient: UInt64 = 0
    /// Results dropped because their client's queue and its backlog at the sink were full (a
    /// client that stopped reading: 100,000 results or 256 MiB wait for it before this happens).
    public var resultsDroppedClientBusy: UInt64 = 0
    /// Messages that were not valid TaskMesh messages: dropped.
    public var malformed: UInt64 = 0
    /// PROGRESS updates forwarded to their client, and dropped (no such client, or its queue
    /// is full or holds results: progress never waits, and never overtakes a result).
    public var progressForwarded: UInt64 = 0
    public var progressDropped: UInt64 = 0
    /// Workers currently alive, and clients currently connected.
    public var liveWorkers: Int = 0
    public var liveClients: Int = 0
    /// Workers dropped for silence.
    public var workersExpired: UInt64 = 0

    /// Peers turned away during the CURVE handshake because their key is on no allowlist (in a
    /// secure mesh; counted per process, and including the start-up self-test's probes).
    public var rejectedPeers: UInt64 = 0

    public init() {}
}

extension SinkStats: RoleCounters {}
