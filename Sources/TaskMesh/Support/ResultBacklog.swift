import DequeModule

/// Results waiting at the sink (or the broker) for a client whose queue was full: kept in arrival
/// order and sent as the client catches up, so a client that is busy for a while loses nothing.
///
/// Bounded per client by count and bytes, so a client that stopped reading (frozen, or gone
/// without a word) cannot make the sink hold results without limit: past the bound a result is
/// refused, and the caller drops and counts it. Owned by one loop's thread (it may hold messages
/// that belong to that thread). `Outgoing` is one message as the owner sends it.
struct ResultBacklog<Outgoing> {
    let maxResultsPerClient: Int
    let maxBytesPerClient: Int

    init(maxResultsPerClient: Int = 100_000, maxBytesPerClient: Int = 256 << 20) {
        self.maxResultsPerClient = maxResultsPerClient
        self.maxBytesPerClient = maxBytesPerClient
    }

    private struct Waiting {
        var messages = Deque<(message: Outgoing, size: Int, results: Int)>()
        var results = 0
        var bytes = 0
    }

    private var clients: [[UInt8]: Waiting] = [:]

    /// Held results are retried this often: a ROUTER reports no per-peer writability.
    static var retryInterval: Duration { .milliseconds(1) }

    var isEmpty: Bool { clients.isEmpty }

    /// How long the owning loop may sleep: `wait`, or until the next retry while results wait.
    func pollTimeout(_ wait: Duration) -> Duration { isEmpty ? wait : min(wait, Self.retryInterval) }

    /// Whether results for `client` are already waiting (a new one must queue behind them).
    func isHolding(_ client: [UInt8]) -> Bool { !clients.isEmpty && clients[client] != nil }

    /// Keeps `message` (`size` bytes, `results` results) for `client`; false when that client's
    /// backlog is full.
    mutating func hold(_ message: Outgoing, size: Int, results: Int = 1, for client: [UInt8]) -> Bool {
        let (count, bytes) = clients[client].map { ($0.results, $0.bytes) } ?? (0, 0)
        guard count + results <= maxResultsPerClient, bytes + size <= maxBytesPerClient else { return false }
        // Appended in place: a copy taken out and put back would copy the whole queue each time.
        clients[client, default: Waiting()].messages.append((message, size, results))
        clients[client, default: Waiting()].results += results
        clients[client, default: Waiting()].bytes += size
        return true
    }

    /// What became of a result given to `offer`.
    enum Offer {
        case sent
        /// Queued behind earlier results, or because the client's queue is full.
        case held
        /// The client's backlog is full: the caller drops the result.
        case refused
        /// The client is gone: the caller drops the result.
        case gone
    }

    /// Sends `message` (`results` results) to `client` at once unless results already wait for
    /// it; holds them (in order) when they must wait or the client's queue is full.
    mutating func offer(_ message: Outgoing, size: Int, results: Int = 1, to client: [UInt8], via send: (Outgoing) -> Delivery) -> Offer {
        if !isHolding(client) {
            switch send(message) {
            case .sent: return .sent
            case .gone: return .gone
            case .busy: break
            }
        }
        return hold(message, size: size, results: results, for: client) ? .held : .refused
    }

    /// What happened to one attempt to send a held result.
    enum Delivery {
        case sent
        /// The client's queue is still full: try again later.
        case busy
        /// The client is gone: drop what it had waiting.
        case gone
    }

    /// Sends what each client can take now, oldest first. Returns how many results were sent and
    /// how many were dropped because their client is gone.
    mutating func deliver(_ send: ([UInt8], Outgoing) -> Delivery) -> (sent: Int, dropped: Int) {
        var sent = 0, dropped = 0
        for client in Array(clients.keys) {
            // Taken out while it drains, so the queue is mutated in place, not copied.
            guard var waiting = clients.removeValue(forKey: client) else { continue }
            delivering: while let first = waiting.messages.first {
                switch send(client, first.message) {
                case .sent:
                    waiting.messages.removeFirst()
                    waiting.bytes -= first.size
                    waiting.results -= first.results
                    sent += first.results
                case .busy:
                    break delivering
                case .gone:
                    dropped += waiting.results
                    waiting.messages.removeAll()
                    waiting.results = 0
                }
            }
            if !waiting.messages.isEmpty { clients[client] = waiting }
        }
        return (sent, dropped)
    }
}
