internal import CZMQ

/// A libzmq socket with safe defaults applied at creation.
///
/// **Threading.** libzmq sockets are not thread-safe (zmq(7)). `Socket` is therefore not
/// `Sendable`: the compiler lets one isolation domain own it at a time, and ownership moves only
/// as a whole (`sending`). TaskMesh creates each socket on the thread that uses it for its whole
/// life; async code never touches a socket.
///
/// **Defaults** (docs/ARCHITECTURE.md explains each): bounded LINGER, explicit HWMs, a
/// MAXMSGSIZE, a short handshake timeout, ROUTER_MANDATORY on ROUTER, IMMEDIATE on PUSH and
/// DEALER. Override them with `set(_:_:)` before binding or connecting.
///
/// Closing is idempotent; `deinit` closes a socket that was not closed explicitly. The socket
/// keeps its `Context` alive, so terminating a context never deadlocks on a forgotten socket.
public final class Socket {
    /// The socket pattern.
    public let type: SocketType
    /// The context this socket belongs to.
    public let context: Context
    private(set) var handle: UnsafeMutableRawPointer?
    /// A `zmq_msg_t` for receiving and zero-copy sending. It lives on the heap because libzmq keeps
    /// small messages inside the struct itself: it must never move while libzmq or we read it, and
    /// a Swift local passed as `&value` may be a temporary copy.
    private let scratch: UnsafeMutablePointer<zmq_msg_t>

    /// Creates a socket of `type` in `context` and applies `defaults`.
    public init(_ context: Context, _ type: SocketType, defaults: SocketDefaults = .standard) throws(ZMQError) {
        guard !context.isTerminated else {
            throw ZMQError(.contextTerminated, message: "zmq_socket(\(type)): the context was terminated")
        }
        guard let handle = zmq_socket(context.handle, type.raw) else {
            throw ZMQError.last("zmq_socket(\(type))")
        }
        self.type = type
        self.context = context
        self.handle = handle
        self.scratch = .allocate(capacity: 1)
        zmq_msg_init(scratch)
        do {
            try defaults.apply(to: self)
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
        zmq_msg_close(scratch)
        scratch.deallocate()
    }

    /// Closes the socket now. Pending outbound messages are kept for at most LINGER by libzmq.
    public func close() {
        guard let handle else { return }
        self.handle = nil
        _ = zmq_close(handle)
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { handle == nil }

    func live(_ operation: String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(.wrongState, message: "\(operation): socket is closed") }
        return handle
    }

    // MARK: Options

    /// Sets a socket option. Throws `invalidArgument` for a value libzmq refuses.
    public func set<Value>(_ option: SocketOption<Value>, _ value: Value) throws(ZMQError) {
        let handle = try live("set \(option.name)")
        _ = try zmqCall("zmq_setsockopt(\(option.name))") { option.setter(handle, value) }
    }

    /// Reads a socket option.
    public func get<Value>(_ option: SocketOption<Value>) throws(ZMQError) -> Value {
        let handle = try live("get \(option.name)")
        var value: Value?
        _ = try zmqCall("zmq_getsockopt(\(option.name))") {
            let (rc, v) = option.getter(handle)
            value = v
            return rc
        }
        return value!
    }

    // MARK: Endpoints

    /// Binds to `endpoint` and returns the endpoint actually bound: a wildcard port
    /// (`tcp://127.0.0.1:0` or `tcp://*:*`) is replaced by the port the system chose.
    @discardableResult
    public func bind(_ endpoint: String) throws(ZMQError) -> String {
        let handle = try live("bind")
        _ = try zmqCall("bind \(endpoint)") { zmq_bind(handle, endpoint) }
        return (try? get(.lastEndpoint)) ?? endpoint
    }

    /// Starts connecting to `endpoint`. libzmq connects (and reconnects) in the background; this
    /// returns before any connection exists.
    public func connect(_ endpoint: String) throws(ZMQError) {
        let handle = try live("connect")
        _ = try zmqCall("connect \(endpoint)") { zmq_connect(handle, endpoint) }
    }

    /// Stops listening on an endpoint given to `bind` (use the returned, resolved form).
    public func unbind(_ endpoint: String) throws(ZMQError) {
        let handle = try live("unbind")
        _ = try zmqCall("unbind \(endpoint)") { zmq_unbind(handle, endpoint) }
    }

    /// Drops the connection to an endpoint given to `connect`, discarding messages queued to it.
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        let handle = try live("disconnect")
        _ = try zmqCall("disconnect \(endpoint)") { zmq_disconnect(handle, endpoint) }
    }

    // MARK: Sending bytes

    /// Frames at least this large are handed to libzmq without a copy.
    static let zeroCopyThreshold = 32 * 1024

    /// Sends one frame. With `more`, further frames of the same message must follow.
    ///
    /// Blocking sends wait at most SNDTIMEO and then throw `wouldBlock`; with `wait: false` the
    /// call never blocks. A successful send means "queued", not "delivered" (zmq_send(3)).
    public func send(_ frame: [UInt8], more: Bool = false, wait: Bool = true) throws(ZMQError) {
        let handle = try live("send")
        let flags = (more ? ZMQ_SNDMORE : 0) | (wait ? 0 : ZMQ_DONTWAIT)
        if frame.count >= Self.zeroCopyThreshold {
            zmq_msg_close(scratch)
            FrameBox.initialize(scratch, with: frame)
            defer { zmq_msg_init(scratch) }  // on failure libzmq left the frame with us: release it
            do {
                _ = try zmqCall("send") { zmq_msg_send(scratch, handle, flags) }
            } catch {
                zmq_msg_close(scratch)
                throw error
            }
            return
        }
        _ = try zmqCall("send") {
            frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
        }
    }

    /// Sends a multipart message. Only the first frame can fail with `wouldBlock` or
    /// `hostUnreachable`: once it is queued, libzmq accepts the rest of the message atomically.
    public func send(multipart frames: [[UInt8]], wait: Bool = true) throws(ZMQError) {
        precondition(!frames.isEmpty, "a message has at least one frame")
        let last = frames.count - 1
        for (index, frame) in frames.enumerated() {
            try send(frame, more: index < last, wait: wait || index > 0)
        }
    }

    /// Sends a multipart message without blocking. Returns false when the socket cannot accept it
    /// now (no peer, or every peer at its high-water mark); other failures throw.
    public func trySend(multipart frames: [[UInt8]]) throws(ZMQError) -> Bool {
        do {
            try send(multipart: frames, wait: false)
            return true
        } catch where error.code == .wouldBlock {
            return false
        }
    }

    /// Sends a one-frame message without blocking. Returns false when the socket cannot accept
    /// it now (no peer, or every peer at its high-water mark); other failures throw.
    public func trySend(_ frame: [UInt8]) throws(ZMQError) -> Bool {
        do {
            try send(frame, wait: false)
            return true
        } catch where error.code == .wouldBlock {
            return false
        }
    }

    // MARK: Receiving bytes

    /// Receives a whole multipart message, copying each frame once out of libzmq.
    ///
    /// Blocking receives wait at most RCVTIMEO (then throw `wouldBlock`); with `wait: false` the
    /// call throws `wouldBlock` at once when nothing is queued. A message with more than
    /// `maxFrames` frames is drained completely and reported as `tooManyFrames`, so the next call
    /// starts at a message boundary.
    public func receive(wait: Bool = true, maxFrames: Int = 64) throws(ZMQError) -> [[UInt8]] {
        try receive(wait: wait, maxFrames: maxFrames, property: nil).frames
    }

    /// Receives a whole multipart message and a metadata property of the connection it came on
    /// (zmq_msg_gets(3)), such as "User-Id", which a ZAP handler sets to the identity it
    /// authenticated. The property is nil when the connection has none.
    public func receive(wait: Bool = true, maxFrames: Int = 64, property: String?) throws(ZMQError) -> (frames: [[UInt8]], property: String?) {
        let handle = try live("receive")
        var value: String?
        var frames: [[UInt8]] = []
        let message = scratch
        defer {  // release the last frame now rather than at the next receive
            zmq_msg_close(message)
            zmq_msg_init(message)
        }
        var flags = wait ? 0 : ZMQ_DONTWAIT
        var overflow = false
        while true {
            _ = try zmqCall("receive") { zmq_msg_recv(message, handle, flags) }
            flags = 0  // the rest of a multipart message is already here
            // A ROUTER's routing-id frame carries no metadata; the first frame that does, wins.
            if value == nil, let property, let text = zmq_msg_gets(message, property) { value = String(cString: text) }
            if frames.count < maxFrames { frames.append(Self.copy(message)) } else { overflow = true }
            if zmq_msg_more(message) == 0 { break }
        }
        if overflow {
            throw ZMQError(.tooManyFrames, message: "receive: message has more than \(maxFrames) frames")
        }
        return (frames, value)
    }

    /// Like `receive(wait:maxFrames:property:)` but returns nil when nothing is queued.
    public func tryReceive(maxFrames: Int = 64, property: String) throws(ZMQError) -> (frames: [[UInt8]], property: String?)? {
        do {
            return try receive(wait: false, maxFrames: maxFrames, property: property)
        } catch where error.code == .wouldBlock {
            return nil
        }
    }

    /// Receives a multipart message if one is queued; returns nil when none is.
    public func tryReceive(maxFrames: Int = 64) throws(ZMQError) -> [[UInt8]]? {
        do {
            return try receive(wait: false, maxFrames: maxFrames)
        } catch where error.code == .wouldBlock {
            return nil
        }
    }

    private static func copy(_ message: UnsafeMutablePointer<zmq_msg_t>) -> [UInt8] {
        let size = zmq_msg_size(message)
        guard size > 0, let data = zmq_msg_data(message) else { return [] }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            buffer.baseAddress!.update(from: data.assumingMemoryBound(to: UInt8.self), count: size)
            count = size
        }
    }

    // MARK: Messages without copies

    /// Receives a whole multipart message as libzmq messages, without copying any payload.
    /// The same frame limit as `receive(wait:maxFrames:)` applies.
    public func receiveMessages(wait: Bool = true, maxFrames: Int = 64) throws(ZMQError) -> [Message] {
        let handle = try live("receive")
        var frames: [Message] = []
        var flags = wait ? 0 : ZMQ_DONTWAIT
        var overflow = false
        while true {
            let message = Message()
            _ = try zmqCall("receive") { zmq_msg_recv(message.pointer, handle, flags) }
            flags = 0
            let more = zmq_msg_more(message.pointer) != 0
            if frames.count < maxFrames { frames.append(message) } else { overflow = true }
            if !more { break }
        }
        if overflow {
            throw ZMQError(.tooManyFrames, message: "receive: message has more than \(maxFrames) frames")
        }
        return frames
    }

    /// Like `receiveMessages(wait:maxFrames:)` but returns nil when nothing is queued.
    public func tryReceiveMessages(maxFrames: Int = 64) throws(ZMQError) -> [Message]? {
        do {
            return try receiveMessages(wait: false, maxFrames: maxFrames)
        } catch where error.code == .wouldBlock {
            return nil
        }
    }

    /// Sends libzmq messages as one multipart message. Each sent message is emptied (libzmq takes
    /// its content); a message that was not sent because the first frame failed keeps its content.
    public func send(messages: [Message], wait: Bool = true) throws(ZMQError) {
        precondition(!messages.isEmpty, "a message has at least one frame")
        let handle = try live("send")
        let last = messages.count - 1
        for (index, message) in messages.enumerated() {
            let flags = (index < last ? ZMQ_SNDMORE : 0) | (wait || index > 0 ? 0 : ZMQ_DONTWAIT)
            _ = try zmqCall("send") { zmq_msg_send(message.pointer, handle, flags) }
        }
    }
}

/// Keeps a Swift array alive while libzmq sends it without a copy.
final class FrameBox {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Initializes `message` to point into `frame`'s storage. A native Swift array's storage does
    /// not move while the box holds the only reference that libzmq will read through, and the box
    /// is released by libzmq (on its I/O thread) when the frame has been sent or discarded.
    static func initialize(_ message: UnsafeMutablePointer<zmq_msg_t>, with frame: [UInt8]) {
        let box = FrameBox(frame)
        let base = box.bytes.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
        let hint = Unmanaged.passRetained(box).toOpaque()
        let rc = zmq_msg_init_data(message, base, frame.count, { _, hint in
            Unmanaged<FrameBox>.fromOpaque(hint!).release()
        }, hint)
        precondition(rc == 0, "zmq_msg_init_data cannot fail for a non-null buffer")
    }
}
