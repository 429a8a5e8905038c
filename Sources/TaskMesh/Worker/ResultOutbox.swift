import DequeModule

/// What a worker has to send back, without the socket: progress updates and results, in the
/// order they must leave. Progress leaves before results, so a job's last update (queued when
/// its result is) always precedes the result; results for one client that wait together leave
/// as one RESULTS. The loop drains it into its socket (`drain(into:)`).
struct ResultOutbox {
    private var results = Deque<ResultMessage>()
    private var progress = Deque<ProgressMessage>()

    var isEmpty: Bool { results.isEmpty && progress.isEmpty }
    /// Results not yet taken by the socket (they count against the worker's read-ahead).
    var resultCount: Int { results.count }

    mutating func append(_ result: ResultMessage) { results.append(result) }
    mutating func append(_ update: ProgressMessage) { progress.append(update) }
    mutating func append(contentsOf updates: [ProgressMessage]) { progress.append(contentsOf: updates) }

    /// Hands message after message to `send`, oldest first, until it returns false (the socket
    /// takes no more now: the rest stay queued) or none is left. A message `send` throws for is
    /// dropped and reported to `failed`.
    mutating func drain(_ send: ([UInt8]) throws -> Bool, failed: (any Error) -> Void = { _ in }) {
        while let update = progress.first {
            do {
                guard try send(update.encode()) else { return }
            } catch {
                failed(error)
            }
            progress.removeFirst()
        }
        while let (message, count) = ResultBatchWriter.firstMessage(of: results) {
            do {
                guard try send(message) else { return }
            } catch {
                failed(error)
            }
            results.removeFirst(count)
        }
    }
}
