import DequeModule

/// Results waiting at the sink (or the broker) for a client whose queue was full: kept in arrival order and sent
/// as the client catches up, so a client that is busy for a while loses nothing.
///
/// Bounded per client by count and bytes, so a client that stopped reading (frozen, or gone
/// without a word) cannot make the sink hold results without limit: past the bound a result is
/// refused, and the caller drops and counts it. Owned by one loop's thread (it may hold frames
/// that belong to that thread).
struct ResultBacklog<Frames> {
    let maxResultsPerClient: Int
    let maxBytesPerClient: Int

    init(maxResultsPerClient: Int = 100_000, maxBytesPerClient: Int = 256 << 20) {
        self.maxResultsPerClient = maxResultsPerClient
        self.maxBytesPerClient = maxBytesPerClient
    }

    private struct Waiting {
        var results = Deque<(frames: Frames, size: Int)>()
        var bytes = 0
    }

    private var clients: [[UInt8]: Waiting] = [:]

    var isEmpty: Bool { clients.isEmpty }

    /// Whether results for `client` are already waiting (a new one must queue behind them).
    func isHolding(_ client: [UInt8]) -> Bool { clients[client] != nil }

    /// Keeps `frames` (`size` bytes) for `client`; false when that client's backlog is full.
    mutating func hold(_ frames: Frames, size: Int, for client: [UInt8]) -> Bool {
        var waiting = clients[client] ?? Waiting()
        guard waiting.results.count < maxResultsPerClient, waiting.bytes + size <= maxBytesPerClient else { return false }
        waiting.results.append((frames, size))
        waiting.bytes += size
        clients[client] = waiting
        return true
    }

    /// What happened to one attempt to send a held result.
    enum Delivery {
        case sent
        /// The client's queue is still full: try again later.
        case busy
        /// The client is gone: drop what it had waiting.
        case gone
    }

    /// Sends what each client can take now, oldest first. Returns how many were sent and how
    /// many were dropped because their client is gone.
    mutating func deliver(_ send: ([UInt8], Frames) -> Delivery) -> (sent: Int, dropped: Int) {
        var sent = 0, dropped = 0
        for client in Array(clients.keys) {
            guard var waiting = clients[client] else { continue }
            delivering: while let first = waiting.results.first {
                switch send(client, first.frames) {
                case .sent:
                    waiting.results.removeFirst()
                    waiting.bytes -= first.size
                    sent += 1
                case .busy:
                    break delivering
                case .gone:
                    dropped += waiting.results.count
                    waiting.results.removeAll()
                }
            }
            clients[client] = waiting.results.isEmpty ? nil : waiting
        }
        return (sent, dropped)
    }
}
