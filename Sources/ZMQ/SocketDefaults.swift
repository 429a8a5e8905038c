/// The options every new `Socket` gets before it is used. `standard` encodes the lessons in
/// docs/ARCHITECTURE.md ("Socket defaults"); pass another value, or call `Socket.set` after
/// creation, to change one.
public struct SocketDefaults: Sendable {
    /// LINGER: how long close keeps unsent messages. Bounded so that shutdown always finishes.
    public var linger: Duration = .milliseconds(200)
    /// SNDHWM and RCVHWM, in messages per peer.
    public var sendHighWaterMark: Int32 = 1000
    public var receiveHighWaterMark: Int32 = 1000
    /// MAXMSGSIZE, in bytes per frame: a larger inbound frame disconnects its peer.
    public var maxMessageSize: Int64 = 32 * 1024 * 1024
    /// HANDSHAKE_IVL: half-open connections are dropped after this long.
    public var handshakeInterval: Duration = .seconds(5)
    /// SNDTIMEO and RCVTIMEO for blocking calls: never block forever.
    public var sendTimeout: Duration = .seconds(5)
    public var receiveTimeout: Duration = .seconds(5)
    /// ROUTER_MANDATORY on ROUTER sockets: unroutable messages fail loudly.
    public var routerMandatory = true
    /// IMMEDIATE on PUSH and DEALER: queue only to completed connections.
    public var immediate = true

    /// The defaults described above.
    public static let standard = SocketDefaults()

    public init() {}

    func apply(to socket: Socket) throws(ZMQError) {
        try socket.set(.linger, linger)
        try socket.set(.sendHighWaterMark, sendHighWaterMark)
        try socket.set(.receiveHighWaterMark, receiveHighWaterMark)
        try socket.set(.maxMessageSize, maxMessageSize)
        try socket.set(.handshakeInterval, handshakeInterval)
        try socket.set(.sendTimeout, sendTimeout)
        try socket.set(.receiveTimeout, receiveTimeout)
        switch socket.type {
        case .router:
            try socket.set(.routerMandatory, routerMandatory)
        case .push, .dealer:
            try socket.set(.immediate, immediate)
        default:
            break
        }
    }
}
