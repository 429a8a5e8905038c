internal import CZMQ
#if canImport(Glibc)
import Glibc
#endif

/// An error from libzmq, classified so callers can act on it without reading errno values.
///
/// The set of codes can grow: switch over `code` with a `default` branch.
public struct ZMQError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure happened.
    public enum Code: String, Hashable, Sendable, CustomStringConvertible {
        /// A non-blocking operation could not complete now (EAGAIN), or a timeout elapsed.
        case wouldBlock
        /// A ROUTER with ROUTER_MANDATORY has no peer with that routing id (EHOSTUNREACH).
        case hostUnreachable
        /// The context was terminated; the socket must be closed (ETERM).
        case contextTerminated
        /// A signal interrupted the call (EINTR). Blocking helpers retry it themselves.
        case interrupted
        /// An argument, option or endpoint was invalid (EINVAL, EPROTONOSUPPORT, ENOCOMPATPROTO).
        case invalidArgument
        /// The endpoint is already bound by someone else (EADDRINUSE).
        case addressInUse
        /// The address could not be assigned or resolved (EADDRNOTAVAIL, ENODEV).
        case addressNotAvailable
        /// The endpoint was not bound or connected (ENOENT on unbind/disconnect).
        case notFound
        /// The socket is in the wrong state for the operation (EFSM).
        case wrongState
        /// The process or the context has too many sockets or files (EMFILE, EMTHREAD).
        case tooManySockets
        /// The operation is not supported by this socket type (ENOTSUP).
        case notSupported
        /// A received multipart message had more frames than the caller accepts.
        case tooManyFrames
        /// The installed libzmq is too old or lacks a required capability.
        case unsupportedLibrary
        /// Any other errno; see `errno` and `description`.
        case other

        public var description: String { rawValue }
    }

    /// The classified failure.
    public let code: Code
    /// The raw errno value reported by libzmq (0 for errors raised by this layer).
    public let errno: Int32
    /// A human-readable explanation, including the operation that failed.
    public let message: String

    public init(_ code: Code, errno: Int32 = 0, message: String) {
        self.code = code
        self.errno = errno
        self.message = message
    }

    public var description: String { "ZMQError.\(code): \(message)" }

    /// Builds the error for the current `zmq_errno()`.
    static func last(_ operation: @autoclosure () -> String) -> ZMQError {
        let number = zmq_errno()
        return ZMQError(errno: number, operation: operation())
    }

    init(errno number: Int32, operation: String) {
        let text = String(cString: zmq_strerror(number))
        self.init(Self.classify(number), errno: number, message: "\(operation): \(text)")
    }

    static func classify(_ number: Int32) -> Code {
        switch number {
        case EAGAIN: return .wouldBlock
        case EHOSTUNREACH: return .hostUnreachable
        case czmq_ETERM: return .contextTerminated
        case EINTR: return .interrupted
        case EINVAL, EPROTONOSUPPORT, czmq_ENOCOMPATPROTO, EFAULT: return .invalidArgument
        case EADDRINUSE: return .addressInUse
        case EADDRNOTAVAIL, ENODEV: return .addressNotAvailable
        case ENOENT: return .notFound
        case czmq_EFSM: return .wrongState
        case EMFILE, czmq_EMTHREAD: return .tooManySockets
        case ENOTSUP: return .notSupported
        default: return .other
        }
    }
}

/// The one place that turns a libzmq return code into a result: retries EINTR, throws a typed
/// error for every other failure.
@inline(__always)
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let rc = body()
        if rc >= 0 { return rc }
        let number = zmq_errno()
        if number == EINTR { continue }
        throw ZMQError(errno: number, operation: operation())
    }
}

extension ZMQError {
    /// Whether the socket can take no more calls (its context was terminated): a loop reading
    /// it stops instead of counting the error against the message it was reading.
    public var endsTheSocket: Bool { code == .contextTerminated }
}
