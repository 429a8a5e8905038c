internal import CZMQ
import Foundation
import Synchronization

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

    /// Set once `terminate(waitingAtMost:)` has begun: `zmq_ctx_term` runs once.
    private let terminating = Atomic<Bool>(false)

    /// Whether `terminate(waitingAtMost:)` was called: no socket may be made in it any more.
    public var isTerminated: Bool { terminating.load(ordering: .acquiring) }

    /// Terminates the context now instead of at release: waits, up to `timeout`, for every
    /// socket's queued messages to leave within its LINGER, which is how a process that is about
    /// to exit makes sure its last messages are sent. Every socket of the context must be closed
    /// first; if one is not, or the messages take longer, this returns false after `timeout` and
    /// leaves the termination running in the background. Call it once, when done with the context.
    public func terminate(waitingAtMost timeout: Duration) async -> Bool {
        guard !terminating.exchange(true, ordering: .acquiringAndReleasing) else { return true }
        let handle = UInt(bitPattern: self.handle)
        return await withCheckedContinuation { continuation in
            let outcome = ResumeOnce(continuation)
            let thread = Thread {
                while zmq_ctx_term(UnsafeMutableRawPointer(bitPattern: handle)) != 0 && zmq_errno() == EINTR {}
                outcome.resume(true)
            }
            thread.name = "zmq-ctx-term"
            thread.start()
            let (seconds, attoseconds) = timeout.components
            let nanoseconds = max(0, seconds) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanoseconds))) {
                outcome.resume(false)
            }
        }
    }

    deinit {
        guard !terminating.load(ordering: .acquiring) else { return }
        // Retry EINTR; any other failure means the handle is already gone.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// Resumes a continuation with the first value offered; later offers are ignored.
private final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Bool, Never>?>

    init(_ continuation: CheckedContinuation<Bool, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: Bool) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}
