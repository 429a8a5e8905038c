import DequeModule
import Synchronization

/// The jobs a worker has accepted and not yet started, shared by the loop thread (which pushes
/// them) and the worker's runner tasks (which take them one at a time).
///
/// A runner that finds the queue empty suspends until a push or `close()`; under steady load
/// runners take job after job without suspending, so a job costs no thread wake-up. Every pushed
/// job is taken by exactly one runner or returned by exactly one `takeAll()`.
final class RunQueue<Item: Sendable>: Sendable {
    private struct State {
        var items = Deque<Item>()
        var waiting: [CheckedContinuation<Item?, Never>] = []
        var closed = false
    }

    private let state = Mutex(State())

    /// Adds items in order, handing them straight to suspended runners first. After `close()`
    /// items are dropped (the worker is gone).
    func push(_ items: some Sequence<Item>) {
        var handOff: [(CheckedContinuation<Item?, Never>, Item)] = []
        state.withLock { state in
            guard !state.closed else { return }
            for item in items {
                if state.waiting.isEmpty {
                    state.items.append(item)
                } else {
                    handOff.append((state.waiting.removeLast(), item))
                }
            }
        }
        for (runner, item) in handOff { runner.resume(returning: item) }
    }

    /// The next item, suspending while there is none; nil once the queue is closed.
    func next() async -> Item? {
        if let item = state.withLock({ $0.items.popFirst() }) { return item }
        return await withCheckedContinuation { continuation in
            let immediate: Item?? = state.withLock { state in
                if let item = state.items.popFirst() { return .some(item) }
                if state.closed { return .some(nil) }
                state.waiting.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Removes and returns every item no runner has taken yet, oldest first.
    func takeAll() -> [Item] {
        state.withLock { state in
            defer { state.items.removeAll() }
            return Array(state.items)
        }
    }

    /// Ends every runner's `next()` with nil, now or when it next asks; drops what is queued.
    func close() {
        let waiting = state.withLock { state in
            state.closed = true
            state.items.removeAll()
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for runner in waiting { runner.resume(returning: nil) }
    }
}
