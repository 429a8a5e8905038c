import Synchronization

/// A one-shot value that completes exactly once; later completions are ignored and reported.
/// Waiters may await it or register callbacks. Thread-safe.
final class Promise<Value: Sendable>: Sendable {
    private enum State {
        case waiting([Waiter])
        case done(Result<Value, JobError>)
    }

    private enum Waiter {
        case continuation(CheckedContinuation<Value, any Error>)
        case callback(@Sendable (Result<Value, JobError>) -> Void)
    }

    private let state = Mutex<State>(.waiting([]))

    init() {}

    /// Completes the promise. Returns false when it was already complete (the value is dropped).
    @discardableResult
    func complete(_ result: Result<Value, JobError>) -> Bool {
        let waiters: [Waiter]? = state.withLock { state in
            guard case .waiting(let waiters) = state else { return nil }
            state = .done(result)
            return waiters
        }
        guard let waiters else { return false }
        for waiter in waiters {
            switch waiter {
            case .continuation(let c): c.resume(with: result.mapError { $0 as any Error })
            case .callback(let f): f(result)
            }
        }
        return true
    }

    var isComplete: Bool {
        state.withLock { if case .done = $0 { true } else { false } }
    }

    /// Suspends until the promise completes; throws its `JobError`.
    func value() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Value, JobError>? = state.withLock { state in
                switch state {
                case .done(let result):
                    return result
                case .waiting(var waiters):
                    waiters.append(.continuation(continuation))
                    state = .waiting(waiters)
                    return nil
                }
            }
            if let ready { continuation.resume(with: ready.mapError { $0 as any Error }) }
        }
    }

    /// Calls `body` once with the outcome: now if complete, else on the completing thread.
    func onComplete(_ body: @escaping @Sendable (Result<Value, JobError>) -> Void) {
        let ready: Result<Value, JobError>? = state.withLock { state in
            switch state {
            case .done(let result):
                return result
            case .waiting(var waiters):
                waiters.append(.callback(body))
                state = .waiting(waiters)
                return nil
            }
        }
        if let ready { body(ready) }
    }
}
