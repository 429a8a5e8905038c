internal import CZMQ

/// One libzmq frame (`zmq_msg_t`) owned by Swift: received and sent again without copying its
/// content, as a forwarding hop (the sink) needs.
///
/// Like `Socket`, a message is not `Sendable`: it belongs to the thread that received it.
public final class Message {
    let pointer: UnsafeMutablePointer<zmq_msg_t>

    /// An empty frame.
    public init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    /// A frame holding a copy of `bytes`.
    public init(_ bytes: [UInt8]) {
        pointer = .allocate(capacity: 1)
        zmq_msg_init_size(pointer, bytes.count)
        if !bytes.isEmpty {
            bytes.withUnsafeBytes { zmq_msg_data(pointer).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    deinit {
        zmq_msg_close(pointer)
        pointer.deallocate()
    }

    /// The number of bytes in the frame.
    public var count: Int { zmq_msg_size(pointer) }

    /// A copy of the frame's bytes.
    public var bytes: [UInt8] { prefix(count) }

    /// A copy of the first `length` bytes (fewer if the frame is shorter).
    public func prefix(_ length: Int) -> [UInt8] {
        let size = min(length, count)
        guard size > 0 else { return [] }
        let data = zmq_msg_data(pointer)!.assumingMemoryBound(to: UInt8.self)
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// Reads a metadata property of a received frame (zmq_msg_gets(3)), for example "User-Id"
    /// set by a ZAP handler, or "Peer-Address". Nil when the property is absent.
    public func property(_ name: String) -> String? {
        guard let value = zmq_msg_gets(pointer, name) else { return nil }
        return String(cString: value)
    }
}

/// Names of the metadata properties a received frame can carry (zmq_msg_gets(3)).
public enum MessageProperty {
    /// The identity a ZAP handler gave the connection: with CURVE, the peer's public key (Z85).
    public static let userID = "User-Id"
    /// The peer's address, as the transport reports it.
    public static let peerAddress = "Peer-Address"
}
