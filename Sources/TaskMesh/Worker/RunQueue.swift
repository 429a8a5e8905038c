import DequeModule
import Synchronization

/// The jobs a worker has accepted and not yet started, shared by the loop thread (which pushes
/// them) and the worker's runner tasks (which take them one at a time).
///
/// A runner that finds the queue empty suspends until a push or `close()`; under steady load
/// runners take job after job with `poll()`, neither suspending nor making an async call, so a
/// job costs no thread wake-up. Every pushed job is taken by exactly one runner or returned by
/// exactly one `takeNewest(leaving:)`.
final class RunQueue<Item: Sendable>: Sendable {
    private struct State {
        var items = Deque<Item>()
        var waiting: [CheckedContinuation<Item?, Never>] = []
        var closed = false
    }

    private let state = Mutex(State())

    /// Adds items in order and wakes at most one suspended runner; a runner that takes an item
    /// while more wait wakes the next one, so runners wake only as far as there is work.
    /// After `close()` items are dropped (the worker is gone).
    func push(_ items: some Sequence<Item>) {
        let handOff = state.withLock { state -> (CheckedContinuation<Item?, Never>, Item)? in
            guard !state.closed else { return nil }
            state.items.append(contentsOf: items)
            return Self.handOff(&state)
        }
        if let (runner, item) = handOff { runner.resume(returning: item) }
    }

    /// The next item, suspending while there is none; nil once the queue is closed.
    func next() async -> Item? {
        let (item, handOff) = state.withLock { state in (state.items.popFirst(), Self.handOff(&state)) }
        if let (runner, next) = handOff { runner.resume(returning: next) }
        if let item { return item }
        let woken = await withCheckedContinuation { continuation in
            let immediate: Item?? = state.withLock { state in
                if let item = state.items.popFirst() { return .some(item) }
                if state.closed { return .some(nil) }
                state.waiting.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
        // Woken with work: pass the wake-up on while more is queued, before this item runs.
        if woken != nil, let (runner, next) = state.withLock({ Self.handOff(&$0) }) { runner.resume(returning: next) }
        return woken
    }

    /// The next item if one is queued, without suspending: what a runner that just finished a
    /// job asks first, so that under load it goes from job to job without an async call.
    func poll() -> Item? {
        state.withLock { $0.items.popFirst() }
    }

    /// An item for a suspended runner, when there are both.
    private static func handOff(_ state: inout State) -> (CheckedContinuation<Item?, Never>, Item)? {
        guard !state.waiting.isEmpty, let item = state.items.popFirst() else { return nil }
        return (state.waiting.removeLast(), item)
    }

    /// A suspended runner taken out of service while its caller runs a job itself.
    struct Borrowed: Sendable {
        fileprivate let runner: CheckedContinuation<Item?, Never>
    }

    /// Takes an idle runner out of service, so a job the caller runs itself counts against the
    /// runners; nil when none is idle (or work is queued, which an idle runner should take).
    func borrowIdleRunner() -> Borrowed? {
        state.withLock { state in
            guard state.items.isEmpty, !state.closed, let runner = state.waiting.popLast() else { return nil }
            return Borrowed(runner: runner)
        }
    }

    /// Puts a borrowed runner back: it takes the next queued item at once, or waits again.
    func giveBack(_ borrowed: Borrowed) {
        let item: Item?? = state.withLock { state in
            if state.closed { return .some(nil) }
            if let item = state.items.popFirst() { return .some(item) }
            state.waiting.append(borrowed.runner)
            return nil
        }
        if let item { borrowed.runner.resume(returning: item) }
    }

    /// Items no runner has taken yet.
    var count: Int { state.withLock { $0.items.count } }

    /// Runners suspended in `next()`, waiting for an item.
    var idleRunners: Int { state.withLock { $0.waiting.count } }

    /// Removes and returns the first item no runner has taken yet that matches.
    func removeFirst(where matches: (Item) -> Bool) -> Item? {
        state.withLock { state in
            guard let index = state.items.firstIndex(where: matches) else { return nil }
            return state.items.remove(at: index)
        }
    }

    /// Removes and returns the newest items no runner has taken yet, oldest first, leaving the
    /// oldest `keep`.
    func takeNewest(leaving keep: Int) -> [Item] {
        state.withLock { state in
            guard state.items.count > keep else { return [] }
            let newest = Array(state.items.suffix(state.items.count - keep))
            state.items.removeLast(newest.count)
            return newest
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
