internal import CZMQ

/// A libzmq context: the owner of I/O threads and the namespace of `inproc://` endpoints.
///
/// A context is thread-safe and may be shared freely. Every `Socket` keeps its context alive, so
/// the context is terminated only after its last socket is closed and released; termination then
/// waits at most for each socket's LINGER (bounded by default, see `Socket`).
public final class Context: @unchecked Sendable {
    // @unchecked: zmq_ctx_* calls are thread-safe per zmq_ctx_new(3); the handle is immutable.
    let handle: UnsafeMutableRawPointer

    /// Creates a context with `ioThreads` libzmq I/O threads.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        if ioThreads != 1 {
            _ = try zmqCall("zmq_ctx_set(IO_THREADS)") { zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) }
        }
    }

    /// Makes every blocking call on this context's sockets fail with `contextTerminated`, so
    /// their owning threads can close them. Safe to call more than once, from any thread.
    public func shutdown() {
        _ = zmq_ctx_shutdown(handle)
    }

    deinit {
        // Retry EINTR; any other failure means the handle is already gone.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
