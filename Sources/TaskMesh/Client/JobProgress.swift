import Synchronization

/// How far a running job has got, as its handler last reported (`JobContext.progress`).
public struct JobProgress: Sendable, Hashable {
    /// Units done, of `total`; the handler decides what a unit is.
    public let completed: UInt64
    public let total: UInt64
    /// What the handler attached (up to 4 KiB), empty if nothing.
    public let detail: [UInt8]
    /// The attempt reporting it: a retry starts over.
    public let attempt: Int

    /// `completed / total`, between 0 and 1; 0 when `total` is 0.
    public var fraction: Double { total == 0 ? 0 : min(1, Double(completed) / Double(total)) }

    init(_ message: ProgressMessage) {
        completed = message.completed
        total = message.total
        detail = message.detail
        attempt = Int(message.attempt)
    }
}

/// A job's progress updates on their way to the tasks that watch them: created when someone
/// first watches (most jobs are never watched and never pay for it); keeps the latest update
/// for watchers that come later; ends every watcher's stream when the job ends.
final class ProgressChannel: Sendable {
    private struct State {
        var latest: JobProgress?
        var streams: [UInt64: AsyncStream<JobProgress>.Continuation] = [:]
        var callbacks: [@Sendable (JobProgress) -> Void] = []
        var nextStream: UInt64 = 0
        var ended = false
    }

    private let state = Mutex(State())

    /// The loop's side: a new update, in order.
    func deliver(_ update: JobProgress) {
        let (streams, callbacks) = state.withLock { state -> ([AsyncStream<JobProgress>.Continuation], [@Sendable (JobProgress) -> Void]) in
            guard !state.ended else { return ([], []) }
            state.latest = update
            return (Array(state.streams.values), state.callbacks)
        }
        for stream in streams { stream.yield(update) }
        for callback in callbacks { callback(update) }
    }

    /// The job ended: every stream finishes after the updates it already has.
    func end() {
        let streams = state.withLock { state -> [AsyncStream<JobProgress>.Continuation] in
            state.ended = true
            state.callbacks = []
            defer { state.streams = [:] }
            return Array(state.streams.values)
        }
        for stream in streams { stream.finish() }
    }

    /// A stream of the updates from now on, starting with the latest one so far.
    func stream() -> AsyncStream<JobProgress> {
        let (stream, continuation) = AsyncStream<JobProgress>.makeStream(bufferingPolicy: .unbounded)
        let (latest, ended, id) = state.withLock { state -> (JobProgress?, Bool, UInt64) in
            let id = state.nextStream
            state.nextStream += 1
            if !state.ended { state.streams[id] = continuation }
            return (state.latest, state.ended, id)
        }
        if let latest { continuation.yield(latest) }
        if ended {
            continuation.finish()
        } else {
            continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.streams.removeValue(forKey: id) } }
        }
        return stream
    }

    /// Calls `body` with every later update, on the client's loop thread (keep it short).
    func onUpdate(_ body: @escaping @Sendable (JobProgress) -> Void) {
        state.withLock { state in
            if !state.ended { state.callbacks.append(body) }
        }
    }
}
