import ZMQ

/// The one way every role's loop reads a socket it was told is readable: up to a batch of
/// messages per wake-up, so that one busy peer never starves the loop's other sockets.
enum SocketDrain {
    /// The most messages one drain reads.
    static let batch = 4096

    /// Reads messages with `receive` (nil: none waiting) and hands each to `handle`, while
    /// `keepReading` (asked before each read with the number of reads so far, e.g. for a time
    /// budget) agrees. A receive error is a malformed message (counted through `malformed`, and
    /// the drain goes on) unless it ends the socket (a terminated context), which ends the drain.
    @inline(__always)
    static func messages<Received>(upTo limit: Int = batch, receive: () throws(ZMQError) -> Received?,
                                   malformed: () -> Void, while keepReading: (Int) -> Bool = { _ in true },
                                   _ handle: (Received) -> Void) {
        for read in 0..<limit {
            if !keepReading(read) { return }
            let received: Received
            do {
                guard let message = try receive() else { return }
                received = message
            } catch {
                if error.endsTheSocket { return }
                malformed()
                continue
            }
            handle(received)
        }
    }
}
