internal import CZMQ
import Synchronization

/// A connection event reported by libzmq's socket monitor (zmq_socket_monitor(3)).
public struct MonitorEvent: Sendable, Equatable, CustomStringConvertible {
    /// What happened.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let raw: UInt16
        public static let connected = Kind(raw: UInt16(ZMQ_EVENT_CONNECTED))
        public static let connectDelayed = Kind(raw: UInt16(ZMQ_EVENT_CONNECT_DELAYED))
        public static let connectRetried = Kind(raw: UInt16(ZMQ_EVENT_CONNECT_RETRIED))
        public static let listening = Kind(raw: UInt16(ZMQ_EVENT_LISTENING))
        public static let accepted = Kind(raw: UInt16(ZMQ_EVENT_ACCEPTED))
        public static let closed = Kind(raw: UInt16(ZMQ_EVENT_CLOSED))
        public static let disconnected = Kind(raw: UInt16(ZMQ_EVENT_DISCONNECTED))
        public static let monitorStopped = Kind(raw: UInt16(ZMQ_EVENT_MONITOR_STOPPED))
        public static let handshakeSucceeded = Kind(raw: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
        public static let handshakeFailedProtocol = Kind(raw: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
        public static let handshakeFailedAuth = Kind(raw: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
        public static let handshakeFailedNoDetail = Kind(raw: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))

        public var description: String {
            switch self {
            case .connected: "connected"
            case .connectDelayed: "connectDelayed"
            case .connectRetried: "connectRetried"
            case .listening: "listening"
            case .accepted: "accepted"
            case .closed: "closed"
            case .disconnected: "disconnected"
            case .monitorStopped: "monitorStopped"
            case .handshakeSucceeded: "handshakeSucceeded"
            case .handshakeFailedProtocol: "handshakeFailedProtocol"
            case .handshakeFailedAuth: "handshakeFailedAuth"
            case .handshakeFailedNoDetail: "handshakeFailedNoDetail"
            default: "event(\(raw))"
            }
        }
    }

    public let kind: Kind
    /// The event's value: a file descriptor, an errno or a retry interval, depending on `kind`.
    public let value: UInt32
    /// The endpoint the event concerns.
    public let endpoint: String

    public var description: String { "\(kind) \(endpoint) (\(value))" }

    /// Decodes the two frames libzmq sends per event; nil for anything else.
    static func decode(_ frames: [[UInt8]]) -> MonitorEvent? {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let f = frames[0]
        // libzmq writes both fields in host byte order.
        let kind = UInt16(f[0]) | UInt16(f[1]) << 8
        let value = UInt32(f[2]) | UInt32(f[3]) << 8 | UInt32(f[4]) << 16 | UInt32(f[5]) << 24
        return MonitorEvent(kind: Kind(raw: kind), value: value, endpoint: String(decoding: frames[1], as: UTF8.self))
    }
}

private let monitorCounter = Atomic<UInt64>(0)

extension Socket {
    /// Starts monitoring this socket and returns a PAIR socket that receives its events; read it
    /// with `receiveEvent` on the same thread that owns this socket. Monitoring stops when this
    /// socket closes.
    public func monitor() throws(ZMQError) -> SocketMonitor {
        let handle = try live("monitor")
        let id = monitorCounter.add(1, ordering: .relaxed).newValue
        let endpoint = "inproc://taskmesh-monitor-\(id)"
        _ = try zmqCall("zmq_socket_monitor") { zmq_socket_monitor(handle, endpoint, ZMQ_EVENT_ALL) }
        var defaults = SocketDefaults.standard
        defaults.linger = .zero
        let pair = try Socket(context, .pair, defaults: defaults)
        try pair.connect(endpoint)
        return SocketMonitor(socket: pair)
    }
}

/// The receiving end of a socket monitor.
public final class SocketMonitor {
    /// The PAIR socket the events arrive on; add it to a `Poller` to wait for events.
    public let socket: Socket

    init(socket: Socket) { self.socket = socket }

    /// Waits up to `timeout` for the next event; nil when none arrived in time.
    public func receiveEvent(timeout: Duration) throws(ZMQError) -> MonitorEvent? {
        try socket.set(.receiveTimeout, timeout)
        do {
            return MonitorEvent.decode(try socket.receive())
        } catch where error.code == .wouldBlock {
            return nil
        }
    }

    /// Returns the next queued event without waiting; nil when none is queued.
    public func tryReceiveEvent() throws(ZMQError) -> MonitorEvent? {
        while let frames = try socket.tryReceive() {
            if let event = MonitorEvent.decode(frames) { return event }
        }
        return nil
    }

    /// Waits until an event of one of `kinds` arrives or `timeout` passes; returns it, or nil.
    public func waitFor(_ kinds: Set<MonitorEvent.Kind>, timeout: Duration) throws(ZMQError) -> MonitorEvent? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            guard let event = try receiveEvent(timeout: clock.now.duration(to: deadline)) else { return nil }
            if kinds.contains(event.kind) { return event }
        }
        return nil
    }
}
