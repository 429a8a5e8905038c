import Foundation
import Logging
import Synchronization
import ZMQ

/// Runs one role's socket loop on a dedicated thread: the thread creates its sockets, uses them
/// for its whole life and closes them, so no socket ever changes threads (docs/ARCHITECTURE.md,
/// "Threads"). Other threads talk to the loop only through locked inboxes and a `Signal`.
final class LoopThread: Sendable {
    /// Wakes the loop from `poll`.
    let signal: Signal
    private let stopRequested = Atomic<Bool>(false)
    private let exited = Latch()
    private let launched = Atomic<Bool>(false)

    init() throws(ZMQError) {
        signal = try Signal()
    }

    /// Whether `requestStop()` was called; the loop checks it after every wake-up.
    var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }

    /// Waits on `poller` (which holds this thread's `signal`) for at most `timeout`, then clears
    /// the signal, since the loop looks at everything after a wake-up. Returns false, after
    /// logging why, when polling failed: the loop then ends.
    func wait(_ poller: inout Poller, upTo timeout: Duration, logger: Logger) -> Bool {
        do {
            try poller.poll(timeout: timeout)
        } catch {
            logger.error("poll failed: \(error)")
            return false
        }
        signal.drain()
        return true
    }

    /// Asks the loop to finish; returns at once.
    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        signal.notify()
    }

    /// Starts the loop on a new thread: `setUp` runs there first and creates the loop's sockets
    /// (throwing fails the start, with its error), then the loop it returns runs there until it
    /// returns. Returns once `setUp` has returned.
    func launch(name: String, _ setUp: @escaping @Sendable () throws -> () -> Void) async throws {
        let started = StartGate()
        let exited = self.exited
        launched.store(true, ordering: .releasing)
        let thread = Thread {
            do {
                let run = try setUp()
                started.open(nil)
                run()
            } catch {
                started.open(error)
            }
            exited.open()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        try await started.wait()
    }

    /// Marks a loop that will never start as exited (its role failed to start before
    /// launching it), so nothing waits for it. Does nothing to a loop that started.
    func abandon() {
        if !launched.load(ordering: .acquiring) { exited.open() }
    }

    /// Waits until the loop's thread has exited.
    func waitUntilExited() async {
        await exited.wait()
    }
}

/// Opens once; every waiter, early or late, resumes.
final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.open else { return [] }
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

/// Carries the outcome of a loop's start-up to the task that started it.
private final class StartGate: Sendable {
    private let state = Mutex<(done: Bool, error: (any Error)?, waiter: CheckedContinuation<Void, any Error>?)>((false, nil, nil))

    func open(_ error: (any Error)?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard !state.done else { return nil }
            state.done = true
            state.error = error
            defer { state.waiter = nil }
            return state.waiter
        }
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume() }
        }
    }

    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { state -> (Bool, (any Error)?) in
                if state.done { return (true, state.error) }
                state.waiter = continuation
                return (false, nil)
            }
            if outcome.0 {
                if let error = outcome.1 { continuation.resume(throwing: error) } else { continuation.resume() }
            }
        }
    }
}

/// Milliseconds since the Unix epoch on this machine's wall clock, as carried in JOB deadlines.
func wallClockMilliseconds() -> UInt64 {
    UInt64(max(0, Date().timeIntervalSince1970 * 1000))
}
