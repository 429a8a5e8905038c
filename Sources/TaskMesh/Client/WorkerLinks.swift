import ZMQ

/// A direct-mode client's connections to its workers: one PUSH per worker, so the client picks
/// the worker for every message and counts what each one has unanswered.
///
/// Jobs go to the worker with the fewest unanswered jobs that can take a message now, so a slow
/// or busy worker gets less. A worker leaving the membership gets no more jobs; while it still
/// has unanswered jobs its link stays open (retired), so a CANCEL for one of them still reaches
/// it and, should the sink have forgotten it only for a moment (missed heartbeats), the link
/// comes back as it was, its queue intact. Once nothing is unanswered there, the socket closes
/// with a linger, so jobs already queued for it still reach it (a stopping worker hands them
/// back `declined`) instead of being dropped with the connection. Owned by the client loop's
/// thread.
struct WorkerLinks {
    final class Link {
        let id: UInt32
        let workerID: [UInt8]
        let endpoint: String
        let socket: Socket
        /// What the worker advertised it runs, less what it answered `unknownHandler` for.
        fileprivate(set) var capabilities: Capabilities
        /// Handlers it advertised and then answered `unknownHandler` for, until it advertises anew.
        fileprivate(set) var withdrawn: Set<String> = []
        /// Jobs sent to this worker and not answered yet.
        var unanswered = 0

        init(id: UInt32, workerID: [UInt8], endpoint: String, socket: Socket, capabilities: Capabilities) {
            self.id = id
            self.workerID = workerID
            self.endpoint = endpoint
            self.socket = socket
            self.capabilities = capabilities
        }
    }

    /// A job's routing class: the links that may run it are the same for every job of a class.
    struct RouteKey: Hashable {
        let handler: String
        let requires: [String]
    }

    /// How long a link's socket may keep delivering jobs queued for a worker that left.
    let leaveLinger: Duration

    /// The links jobs may go to: the workers of the current membership.
    private(set) var links: [Link] = []
    /// Links of workers that left the membership with jobs unanswered, oldest first: no job
    /// goes to them, but they stay open until those jobs are answered or given up on.
    private(set) var retired: [Link] = []
    /// Every open link, current and retired.
    private var byID: [UInt32: Link] = [:]
    private var nextID: UInt32 = 1
    /// Bumped on every change, so the loop knows to rebuild its poller.
    private(set) var generation = 0
    /// The links each routing class may use, in `links` order; emptied whenever a link comes,
    /// goes or changes what it advertises.
    private var routes: [RouteKey: [Link]] = [:]
    /// The class asked for last and its links: jobs come in runs of one class.
    private var lastRoute: (key: RouteKey, links: [Link])?

    init(leaveLinger: Duration) { self.leaveLinger = leaveLinger }

    var count: Int { links.count }
    var isEmpty: Bool { links.isEmpty }

    func contains(endpoint: String) -> Bool { links.contains { $0.endpoint == endpoint } }

    /// Most retired links kept open at once; past it the oldest closes (with its linger).
    static let maxRetired = 256

    /// Brings back the retired link of the worker `workerID` at `endpoint` (it rejoined the
    /// membership): same socket, same queue, same unanswered count. Returns false when there is
    /// none; a retired link at that endpoint of another worker (a new process there) closes.
    mutating func revive(workerID: [UInt8], endpoint: String, capabilities: Capabilities) -> Bool {
        guard let index = retired.firstIndex(where: { $0.endpoint == endpoint }) else { return false }
        let link = retired.remove(at: index)
        guard link.workerID == workerID else {
            close(link)
            return false
        }
        link.capabilities = capabilities
        link.withdrawn = []
        links.append(link)
        generation += 1
        forgetRoutes()
        return true
    }

    /// Adds a connected socket for a worker that joined.
    mutating func add(workerID: [UInt8], endpoint: String, socket: Socket, capabilities: Capabilities = .unknown) {
        let link = Link(id: nextID, workerID: workerID, endpoint: endpoint, socket: socket, capabilities: capabilities)
        nextID = nextID == .max ? 1 : nextID + 1
        links.append(link)
        byID[link.id] = link
        generation += 1
        forgetRoutes()
    }

    /// Records what the worker at `endpoint` advertises now (it changed its handlers).
    mutating func update(endpoint: String, capabilities: Capabilities) {
        guard let link = links.first(where: { $0.endpoint == endpoint }), link.capabilities != capabilities || !link.withdrawn.isEmpty
        else { return }
        link.capabilities = capabilities
        link.withdrawn = []
        forgetRoutes()
    }

    /// Records that the link `id` answered `unknownHandler` for `handler`: whatever it
    /// advertised (its list may have changed on the way, before or after this answer), it gets
    /// no more such jobs until it advertises again. Returns true when the link is known and
    /// lists its handlers, so the job (which never ran) may go to another worker; false for a
    /// link that is gone or lists none (an older worker, sent everything as before).
    mutating func withdraw(_ handler: String, from id: UInt32) -> Bool {
        guard let link = byID[id], var names = link.capabilities.handlers else { return false }
        guard names.contains(handler) else { return true }  // already not sent such jobs
        names.removeAll { $0 == handler }
        link.capabilities = Capabilities(handlers: names, labels: link.capabilities.labels)
        link.withdrawn.insert(handler)
        forgetRoutes()
        return true
    }

    /// The links that may run a job of `handler` requiring `requires`, in `links` order.
    mutating func eligible(_ key: RouteKey) -> [Link] {
        if let lastRoute, lastRoute.key == key { return lastRoute.links }
        let found = routes[key] ?? links.filter { $0.capabilities.canRun(key.handler, requiring: key.requires) }
        if routes.count >= Self.maxCachedRoutes { routes.removeAll(keepingCapacity: true) }  // many classes, or mistyped names
        routes[key] = found
        lastRoute = (key, found)
        return found
    }

    /// Most routing classes remembered at once.
    static let maxCachedRoutes = 256

    /// Every handler name the linked workers advertise, sorted.
    var handlersOffered: [String] {
        Array(Set(links.flatMap { $0.capabilities.handlers ?? [] })).sorted()
    }

    /// Every label the linked workers carry, sorted.
    var labelsOffered: [String] {
        Array(Set(links.flatMap(\.capabilities.labels))).sorted()
    }

    private mutating func forgetRoutes() {
        routes.removeAll(keepingCapacity: true)
        lastRoute = nil
    }

    /// Drops the workers whose endpoint is not in `endpoints`: no more jobs go to them. A link
    /// with jobs unanswered is retired (kept open); the others close with `leaveLinger`, so what
    /// is queued for them still leaves. Returns the endpoints dropped.
    mutating func keepOnly(_ endpoints: Set<String>) -> [String] {
        let leaving = links.filter { !endpoints.contains($0.endpoint) }
        guard !leaving.isEmpty else { return [] }
        links.removeAll { !endpoints.contains($0.endpoint) }
        for link in leaving {
            if link.unanswered > 0 {
                retired.append(link)
            } else {
                close(link)
            }
        }
        while retired.count > Self.maxRetired { close(retired.removeFirst()) }
        generation += 1
        forgetRoutes()
        return leaving.map(\.endpoint)
    }

    /// Records that `count` jobs went to the link `id`.
    func sent(_ count: Int, to id: UInt32) {
        byID[id]?.unanswered += count
    }

    /// Records that a job sent to the link `id` was answered (or given up on); a retired link
    /// with nothing left unanswered closes.
    mutating func answered(by id: UInt32) {
        guard id != 0, let link = byID[id], link.unanswered > 0 else { return }
        link.unanswered -= 1
        if link.unanswered == 0, let index = retired.firstIndex(where: { $0 === link }) {
            close(retired.remove(at: index))
        }
    }

    /// Closes one link's socket with `leaveLinger` and forgets it.
    private mutating func close(_ link: Link) {
        try? link.socket.set(.linger, leaveLinger)
        link.socket.close()
        byID.removeValue(forKey: link.id)
    }

    /// The links of `links` (by default all) in the order to try for the next message: fewest
    /// unanswered first, and among equals the one after the last used, so idle workers share
    /// work round robin.
    func sendOrder(after last: UInt32, among links: [Link]? = nil) -> [Link] {
        let links = links ?? self.links
        guard links.count > 1 else { return links }
        let start = links.firstIndex { $0.id == last }.map { $0 + 1 } ?? 0
        let rotated = Array(links[start...] + links[..<start])
        return rotated.enumerated().sorted { a, b in
            a.element.unanswered != b.element.unanswered ? a.element.unanswered < b.element.unanswered : a.offset < b.offset
        }.map(\.element)
    }

    /// The link with this id, if it is still open (current or retired).
    func link(_ id: UInt32) -> Link? { byID[id] }

    /// Whether the link `id` is one jobs may go to (open and of a worker in the membership).
    func isCurrent(_ id: UInt32) -> Bool { links.contains { $0.id == id } }

    /// Closes every socket (the client is closing); `linger` bounds how long what they still
    /// queue (a last CANCEL) may take to leave.
    mutating func closeAll(linger: Duration = .zero) {
        for link in links + retired {
            try? link.socket.set(.linger, linger)
            link.socket.close()
        }
        links.removeAll()
        retired.removeAll()
        byID.removeAll()
        generation += 1
        forgetRoutes()
    }
}
