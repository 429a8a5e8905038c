internal import CZMQ
#if canImport(Glibc)
import Glibc
#endif

/// A wake-up signal for a thread blocked in `Poller.poll`, backed by an eventfd.
///
/// `notify()` may be called from any thread, any number of times; signals coalesce until the
/// owning thread calls `drain()`. Cheaper than an inproc socket pair: one syscall, no message.
public final class Signal: @unchecked Sendable {
    // @unchecked: the descriptor is immutable and eventfd reads/writes are thread-safe.
    let fd: Int32

    public init() throws(ZMQError) {
        let fd = czmq_eventfd_open()
        guard fd >= 0 else { throw ZMQError(errno: errno, operation: "eventfd") }
        self.fd = fd
    }

    deinit { _ = czmq_fd_close(fd) }

    /// Wakes the poller. Never blocks.
    public func notify() {
        _ = czmq_eventfd_signal(fd)
    }

    /// Clears pending notifications; call it on the owning thread after a wake-up.
    public func drain() {
        _ = czmq_eventfd_drain(fd)
    }
}
