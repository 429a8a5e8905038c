internal import CZMQ

/// Waits on several sockets and wake-up signals at once with `zmq_poll`, always with a finite
/// timeout. A poller holds its sockets strongly and, like them, belongs to one thread.
public struct Poller {
    /// Readiness a poll item waits for.
    public struct Events: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: Int16(ZMQ_POLLIN))
        public static let writable = Events(rawValue: Int16(ZMQ_POLLOUT))
    }

    private var items: [zmq_pollitem_t] = []
    private var sockets: [Socket?] = []
    private var signals: [Signal?] = []

    public init() {}

    /// Adds a socket; returns its index for `events(at:)` and `setInterest(_:at:)`.
    @discardableResult
    public mutating func add(_ socket: Socket, _ events: Events = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: 0, events: events.rawValue, revents: 0))
        sockets.append(socket)
        signals.append(nil)
        return items.count - 1
    }

    /// Adds a wake-up signal (readable when signalled); returns its index.
    @discardableResult
    public mutating func add(_ signal: Signal) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: signal.fd, events: Int16(ZMQ_POLLIN), revents: 0))
        sockets.append(nil)
        signals.append(signal)
        return items.count - 1
    }

    /// Changes what the item at `index` waits for (for example: writable only while there is
    /// something to send).
    public mutating func setInterest(_ events: Events, at index: Int) {
        items[index].events = events.rawValue
    }

    /// Blocks until an item is ready or `timeout` passes; returns the number of ready items
    /// (0 on timeout). Interrupted waits return 0 rather than throwing.
    @discardableResult
    public mutating func poll(timeout: Duration) throws(ZMQError) -> Int {
        let ms = SocketOption<Duration?>.toMilliseconds(timeout)
        let count = items.count
        let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32(count), Int(ms)) }
        if rc < 0 {
            let error = ZMQError.last("zmq_poll")
            if error.code == .interrupted { return 0 }
            throw error
        }
        return Int(rc)
    }

    /// What the item at `index` was ready for in the last `poll`.
    public func events(at index: Int) -> Events {
        Events(rawValue: items[index].revents)
    }
}
