#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A job's outcome as a one-shot value that completes exactly once; later completions are
/// ignored and reported. Waiters may await it or register callbacks. Thread-safe.
///
/// The first waiter is held inline, so the usual life of a job (one submitter awaiting it)
/// allocates nothing beyond the promise itself.
final class Promise: Sendable {
    typealias Outcome = Result<[UInt8], JobError>

    private enum State {
        case waiting(first: Waiter?, more: [Waiter])
        case done(Outcome)
    }

    private enum Waiter {
        case continuation(UnsafeContinuation<Outcome, Never>)
        case callback(@Sendable (Outcome) -> Void)

        func resume(_ outcome: Outcome) {
            switch self {
            case .continuation(let c): c.resume(returning: outcome)
            case .callback(let f): f(outcome)
            }
        }
    }

    private let state = Mutex<State>(.waiting(first: nil, more: []))
    /// The job's progress, once someone watches it or an update arrived; `hasProgress` lets a
    /// completion skip the lock for the jobs (nearly all) that have none.
    private let progressChannel = Mutex<ProgressChannel?>(nil)
    private let hasProgress = Atomic<Bool>(false)

    init() {}

    /// The job's progress channel, made on first use.
    var progress: ProgressChannel {
        progressChannel.withLock { channel in
            if let channel { return channel }
            let made = ProgressChannel()
            channel = made
            hasProgress.store(true, ordering: .releasing)
            if isComplete { made.end() }  // ended before anyone watched: streams end at once
            return made
        }
    }

    /// Completes the promise. Returns false when it was already complete (the value is dropped).
    @discardableResult
    func complete(_ outcome: Outcome) -> Bool {
        let waiters: (first: Waiter?, more: [Waiter])? = state.withLock { state in
            guard case .waiting(let first, let more) = state else { return nil }
            state = .done(outcome)
            return (first, more)
        }
        guard let waiters else { return false }
        if hasProgress.load(ordering: .acquiring) { progress.end() }
        waiters.first?.resume(outcome)
        for waiter in waiters.more { waiter.resume(outcome) }
        return true
    }

    var isComplete: Bool {
        state.withLock { if case .done = $0 { true } else { false } }
    }

    /// The outcome, checking for it on the caller's thread for up to `budget` (yielding the CPU
    /// between checks) before suspending until the promise completes.
    func outcome(spinningFor budget: Duration) async -> Outcome {
        if budget > .zero {
            let clock = ContinuousClock()
            let end = clock.now + budget
            repeat {
                if let ready = completed { return ready }
                sched_yield()
            } while clock.now < end
        }
        return await outcome()
    }

    /// The outcome if the promise is complete.
    private var completed: Outcome? {
        state.withLock { if case .done(let outcome) = $0 { outcome } else { nil } }
    }

    /// Suspends until the promise completes and returns its outcome.
    func outcome() async -> Outcome {
        await withUnsafeContinuation { continuation in
            if let ready = add(.continuation(continuation)) { continuation.resume(returning: ready) }
        }
    }

    /// Suspends until the promise completes; throws its `JobError`.
    func value() async throws(JobError) -> [UInt8] {
        try await outcome().get()
    }

    /// Calls `body` once with the outcome: now if complete, else on the completing thread.
    func onComplete(_ body: @escaping @Sendable (Outcome) -> Void) {
        if let ready = add(.callback(body)) { body(ready) }
    }

    /// Registers `waiter`, or returns the outcome when the promise is already complete (the
    /// waiter is then not kept and must be served by the caller).
    private func add(_ waiter: Waiter) -> Outcome? {
        state.withLock { state in
            switch state {
            case .done(let outcome):
                return outcome
            case .waiting(nil, let more):
                state = .waiting(first: waiter, more: more)
                return nil
            case .waiting(let first, var more):
                more.append(waiter)
                state = .waiting(first: first, more: more)
                return nil
            }
        }
    }
}
