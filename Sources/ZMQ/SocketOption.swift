internal import CZMQ

/// A typed libzmq socket option (see zmq_setsockopt(3)). Use the static members, for example
/// `socket.set(.sendHighWaterMark, 1000)` or `socket.set(.linger, .milliseconds(100))`.
///
/// Time options take `Duration?`: `nil` means "infinite" (libzmq's -1), which TaskMesh never
/// uses in a service loop.
public struct SocketOption<Value>: Sendable {
    /// The libzmq option name, for error messages.
    public let name: String
    let setter: @Sendable (UnsafeMutableRawPointer, Value) -> Int32
    let getter: @Sendable (UnsafeMutableRawPointer) -> (rc: Int32, value: Value)
}

// MARK: - Encodings

extension SocketOption where Value == Int32 {
    static func int(_ raw: Int32, _ name: String) -> Self {
        Self(
            name: name,
            setter: { handle, value in
                var v = value
                return zmq_setsockopt(handle, raw, &v, MemoryLayout<Int32>.size)
            },
            getter: { handle in
                var v: Int32 = 0
                var size = MemoryLayout<Int32>.size
                let rc = zmq_getsockopt(handle, raw, &v, &size)
                return (rc, v)
            }
        )
    }
}

extension SocketOption where Value == Bool {
    static func flag(_ raw: Int32, _ name: String) -> Self {
        let int = SocketOption<Int32>.int(raw, name)
        return Self(
            name: name,
            setter: { handle, value in int.setter(handle, value ? 1 : 0) },
            getter: { handle in
                let (rc, v) = int.getter(handle)
                return (rc, v != 0)
            }
        )
    }
}

extension SocketOption where Value == Int64 {
    static func int64(_ raw: Int32, _ name: String) -> Self {
        Self(
            name: name,
            setter: { handle, value in
                var v = value
                return zmq_setsockopt(handle, raw, &v, MemoryLayout<Int64>.size)
            },
            getter: { handle in
                var v: Int64 = 0
                var size = MemoryLayout<Int64>.size
                let rc = zmq_getsockopt(handle, raw, &v, &size)
                return (rc, v)
            }
        )
    }
}

extension SocketOption where Value == Duration? {
    static func milliseconds(_ raw: Int32, _ name: String) -> Self {
        let int = SocketOption<Int32>.int(raw, name)
        return Self(
            name: name,
            setter: { handle, value in int.setter(handle, value.map(Self.toMilliseconds) ?? -1) },
            getter: { handle in
                let (rc, v) = int.getter(handle)
                return (rc, v < 0 ? nil : .milliseconds(Int64(v)))
            }
        )
    }

    static func toMilliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, ms))
    }
}

extension SocketOption where Value == [UInt8] {
    static func bytes(_ raw: Int32, _ name: String, capacity: Int = 256) -> Self {
        Self(
            name: name,
            setter: { handle, value in
                value.withUnsafeBytes { zmq_setsockopt(handle, raw, $0.baseAddress, $0.count) }
            },
            getter: { handle in
                var buffer = [UInt8](repeating: 0, count: capacity)
                var size = capacity
                let rc = buffer.withUnsafeMutableBytes { zmq_getsockopt(handle, raw, $0.baseAddress, &size) }
                return (rc, Array(buffer.prefix(rc == 0 ? size : 0)))
            }
        )
    }
}

extension SocketOption where Value == String {
    static func string(_ raw: Int32, _ name: String, capacity: Int = 1024) -> Self {
        let bytes = SocketOption<[UInt8]>.bytes(raw, name, capacity: capacity)
        return Self(
            name: name,
            setter: { handle, value in
                var utf8 = Array(value.utf8)
                return utf8.withUnsafeMutableBytes { zmq_setsockopt(handle, raw, $0.baseAddress, $0.count) }
            },
            getter: { handle in
                let (rc, raw) = bytes.getter(handle)
                let text = raw.prefix { $0 != 0 }
                return (rc, String(decoding: text, as: UTF8.self))
            }
        )
    }
}

// MARK: - The options TaskMesh uses

extension SocketOption where Value == Int32 {
    /// ZMQ_SNDHWM: messages queued per peer before a send blocks (PUSH, DEALER) or drops (ROUTER
    /// without ROUTER_MANDATORY). 0 means no limit.
    public static var sendHighWaterMark: Self { .int(ZMQ_SNDHWM, "ZMQ_SNDHWM") }
    /// ZMQ_RCVHWM: messages queued per peer on the receiving side.
    public static var receiveHighWaterMark: Self { .int(ZMQ_RCVHWM, "ZMQ_RCVHWM") }
    /// ZMQ_TYPE (read only).
    public static var type: Self { .int(ZMQ_TYPE, "ZMQ_TYPE") }
    /// ZMQ_EVENTS (read only): ZMQ_POLLIN / ZMQ_POLLOUT bits.
    public static var events: Self { .int(ZMQ_EVENTS, "ZMQ_EVENTS") }
}

extension SocketOption where Value == Bool {
    /// ZMQ_ROUTER_MANDATORY (write only): an unroutable message fails with `hostUnreachable` (and a full peer
    /// with `wouldBlock`) instead of being dropped silently.
    public static var routerMandatory: Self { .flag(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY") }
    /// ZMQ_ROUTER_HANDOVER: a new peer with a routing id already in use takes it over.
    public static var routerHandover: Self { .flag(ZMQ_ROUTER_HANDOVER, "ZMQ_ROUTER_HANDOVER") }
    /// ZMQ_IMMEDIATE: queue messages only to completed connections.
    public static var immediate: Self { .flag(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE") }
    /// ZMQ_CURVE_SERVER: this socket acts as the CURVE server.
    public static var curveServer: Self { .flag(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER") }
    /// ZMQ_ZAP_ENFORCE_DOMAIN (93): with a ZAP domain set, a missing ZAP handler rejects peers.
    public static var zapEnforceDomain: Self { .flag(czmq_ZAP_ENFORCE_DOMAIN, "ZMQ_ZAP_ENFORCE_DOMAIN") }
    /// ZMQ_RCVMORE (read only): more frames of the current message follow.
    public static var receiveMore: Self { .flag(ZMQ_RCVMORE, "ZMQ_RCVMORE") }
}

extension SocketOption where Value == Int64 {
    /// ZMQ_MAXMSGSIZE: an inbound frame larger than this disconnects its peer. -1: no limit.
    public static var maxMessageSize: Self { .int64(ZMQ_MAXMSGSIZE, "ZMQ_MAXMSGSIZE") }
}

extension SocketOption where Value == Duration? {
    /// ZMQ_LINGER: how long pending messages are kept after close. `nil` is infinite.
    public static var linger: Self { .milliseconds(ZMQ_LINGER, "ZMQ_LINGER") }
    /// ZMQ_SNDTIMEO: how long a blocking send waits before failing with `wouldBlock`.
    public static var sendTimeout: Self { .milliseconds(ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO") }
    /// ZMQ_RCVTIMEO: how long a blocking receive waits before failing with `wouldBlock`.
    public static var receiveTimeout: Self { .milliseconds(ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO") }
    /// ZMQ_HEARTBEAT_IVL: interval of ZMTP PINGs on every connection. `nil` or zero: off.
    public static var heartbeatInterval: Self { .milliseconds(ZMQ_HEARTBEAT_IVL, "ZMQ_HEARTBEAT_IVL") }
    /// ZMQ_HEARTBEAT_TIMEOUT: drop a connection with no traffic this long after a PING.
    public static var heartbeatTimeout: Self { .milliseconds(ZMQ_HEARTBEAT_TIMEOUT, "ZMQ_HEARTBEAT_TIMEOUT") }
    /// ZMQ_HEARTBEAT_TTL: ask the remote peer to drop the connection after this much silence.
    public static var heartbeatTTL: Self { .milliseconds(ZMQ_HEARTBEAT_TTL, "ZMQ_HEARTBEAT_TTL") }
    /// ZMQ_HANDSHAKE_IVL: the longest a ZMTP handshake may take before the connection is dropped.
    public static var handshakeInterval: Self { .milliseconds(ZMQ_HANDSHAKE_IVL, "ZMQ_HANDSHAKE_IVL") }
    /// ZMQ_RECONNECT_IVL: first delay before reconnecting a dropped connection.
    public static var reconnectInterval: Self { .milliseconds(ZMQ_RECONNECT_IVL, "ZMQ_RECONNECT_IVL") }
    /// ZMQ_RECONNECT_IVL_MAX: upper bound of the exponential reconnect backoff.
    public static var reconnectIntervalMax: Self { .milliseconds(ZMQ_RECONNECT_IVL_MAX, "ZMQ_RECONNECT_IVL_MAX") }
}

extension SocketOption where Value == [UInt8] {
    /// ZMQ_ROUTING_ID: the identity a ROUTER peer sees for this socket (1 to 255 bytes).
    public static var routingID: Self { .bytes(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID") }
    /// ZMQ_CURVE_SERVERKEY as 32 raw bytes.
    public static var curveServerKey: Self { .bytes(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", capacity: 32) }
    /// ZMQ_CURVE_PUBLICKEY as 32 raw bytes.
    public static var curvePublicKey: Self { .bytes(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", capacity: 32) }
    /// ZMQ_CURVE_SECRETKEY as 32 raw bytes.
    public static var curveSecretKey: Self { .bytes(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", capacity: 32) }
}

extension SocketOption where Value == String {
    /// ZMQ_ZAP_DOMAIN: the authentication domain passed to the ZAP handler.
    public static var zapDomain: Self { .string(ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN") }
    /// ZMQ_LAST_ENDPOINT (read only): the endpoint of the last bind, with the real port of a
    /// wildcard (`tcp://*:0`) bind.
    public static var lastEndpoint: Self { .string(ZMQ_LAST_ENDPOINT, "ZMQ_LAST_ENDPOINT") }
    /// ZMQ_SUBSCRIBE (SUB only).
    public static var subscribe: Self { .string(ZMQ_SUBSCRIBE, "ZMQ_SUBSCRIBE") }
}
