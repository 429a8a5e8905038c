import Foundation
import ZMQ

/// Receives a one-frame message from `socket` (waiting up to its receive timeout) on a thread of
/// its own; a message of more frames throws. A blocking receive in an async test would hold one
/// of the cooperative pool's threads, which on a 2-core machine are two: two such waits at once
/// starve every other test's tasks, such as the handlers of an in-process worker, for as long as
/// they last.
func receiveOffPool(_ socket: Socket) async throws -> [UInt8] {
    nonisolated(unsafe) let socket = socket
    return try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do {
                continuation.resume(returning: try socket.receive(maxFrames: 1)[0])
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// Runs `body`, which blocks (socket calls with timeouts), on a thread of its own, for the
/// reason `receiveOffPool` gives.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do {
                continuation.resume(returning: try body())
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// Lets other tasks run every `every` iterations of a CPU-bound test loop. Tests run as tasks on
/// the cooperative pool, which on a 2-core machine has two threads: two property tests that
/// compute for seconds without suspending hold both, and an in-process worker's handlers (or a
/// client's awaits) in another test then wait that long, past their deadlines.
func yieldingNowAndThen(_ iteration: Int, every: Int = 64) async {
    if iteration % every == every - 1 { await Task.yield() }
}
