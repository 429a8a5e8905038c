import Logging
import Synchronization
import ZMQ

/// The ZAP handler (ZeroMQ RFC 27) of one context: a thread that answers libzmq's
/// authentication requests for every CURVE server socket in that context, accepting only keys
/// on the allowlist of the socket's ZAP domain and giving each its Z85 key as user id.
///
/// It must be running before any CURVE server binds; server sockets also set
/// ZAP_ENFORCE_DOMAIN, so if this handler is missing or dies, libzmq rejects every peer instead
/// of accepting all of them (CURVE without ZAP fails open).
final class ZAPAuthenticator: Sendable {
    static let endpoint = "inproc://zeromq.zap.01"

    private let allowlists: Shared<[String: Set<[UInt8]>]>
    private let counters = Shared<(accepted: UInt64, rejected: UInt64)>((0, 0))
    private let thread: LoopThread

    /// One handler per context. The entry keeps its context alive, so a context's address is
    /// never reused by another while the entry exists; `stop()` removes it.
    private static let registry = Mutex<[ObjectIdentifier: (context: Context, authenticator: ZAPAuthenticator)]>([:])
    private let key = Shared<ObjectIdentifier?>(nil)
    /// Keys of start-up self-test probes: rejected like any stranger, but not logged as attacks.
    static let probeKeys = Shared<Set<[UInt8]>>([])

    private init(allowlists: [String: Set<[UInt8]>]) throws {
        self.allowlists = Shared(allowlists)
        thread = try LoopThread()
    }

    /// The handler of `context`, started on first use; `allowed` is added to its allowlists.
    static func ensure(in context: Context, allowed: [RoleSecurity.Domain: Set<[UInt8]>], logger: Logger) async throws -> ZAPAuthenticator {
        let lists = Dictionary(uniqueKeysWithValues: allowed.map { ($0.key.rawValue, $0.value) })
        let (authenticator, isNew) = try registry.withLock { registry -> (ZAPAuthenticator, Bool) in
            if let existing = registry[ObjectIdentifier(context)] { return (existing.authenticator, false) }
            let created = try ZAPAuthenticator(allowlists: [:])
            created.key.publish(ObjectIdentifier(context))
            registry[ObjectIdentifier(context)] = (context, created)
            return (created, true)
        }
        authenticator.allowlists.update { current in
            current.merge(lists) { $0.union($1) }
        }
        if isNew { try await authenticator.start(context: context, logger: logger) }
        return authenticator
    }

    /// Replaces the allowlists of the given domains (a reload). New handshakes see them at once.
    /// Returns whether any key was removed (live connections of removed keys must then be
    /// dropped by their server).
    func replace(_ lists: [RoleSecurity.Domain: Set<[UInt8]>]) -> Bool {
        allowlists.update { current in
            var removed = false
            for (domain, keys) in lists {
                if !(current[domain.rawValue] ?? []).isSubset(of: keys) { removed = true }
                current[domain.rawValue] = keys
            }
            return removed
        }
    }

    /// Handshakes accepted and rejected since start.
    var counts: (accepted: UInt64, rejected: UInt64) { counters.value }

    /// Stops answering; later handshakes in this context are then rejected (ZAP_ENFORCE_DOMAIN).
    func stop() async {
        if let key = key.value { _ = Self.registry.withLock { $0.removeValue(forKey: key) } }
        thread.requestStop()
        await thread.waitUntilExited()
    }

    private func start(context: Context, logger: Logger) async throws {
        let thread = self.thread, allowlists = self.allowlists, counters = self.counters
        try await thread.launch(name: "taskmesh-zap") {
            // ROUTER rather than REP: no send/receive state to get stuck in when a peer that
            // asked goes away before its answer.
            let socket = try Socket(context, .router)
            do {
                try socket.bind(Self.endpoint)
            } catch {
                socket.close()
                throw error
            }
            return { Self.serve(socket, thread: thread, allowlists: allowlists, counters: counters, logger: logger) }
        }
    }

    /// Answers ZAP requests on `socket` until the thread is asked to stop, then closes it.
    private static func serve(_ socket: Socket, thread: LoopThread, allowlists: Shared<[String: Set<[UInt8]>]>,
                              counters: Shared<(accepted: UInt64, rejected: UInt64)>, logger: Logger) {
        var poller = Poller()
        poller.add(socket)
        poller.add(thread.signal)
        while !thread.isStopRequested {
            guard (try? poller.poll(timeout: .seconds(1))) != nil else { break }
            thread.signal.drain()
            // A request of more frames than ZAP has is dropped (its peer's handshake then fails).
            SocketDrain.messages(receive: { () throws(ZMQError) in try socket.tryReceive(maxFrames: 16) }, malformed: {}) { envelope in
                guard let delimiter = envelope.firstIndex(of: []), delimiter > 0 else { return }
                let route = Array(envelope[...delimiter])
                let request = Array(envelope[(delimiter + 1)...])
                let reply = Self.answer(request, allowlists: allowlists.value)
                counters.update { reply.accepted ? ($0.accepted += 1) : ($0.rejected += 1) }
                if !reply.accepted {
                    let probe = request.count == 7 && Self.probeKeys.value.contains(request[6])
                    logger.log(level: probe ? .debug : .warning, "rejected a CURVE peer\(probe ? " (start-up self-test)" : "")",
                               metadata: ["domain": "\(reply.domain)", "address": "\(reply.address)"])
                }
                try? socket.send(multipart: route + reply.frames, wait: false)
            }
        }
        socket.close()
    }

    struct Reply {
        var frames: [[UInt8]]
        var accepted: Bool
        var domain: String
        var address: String
    }

    /// RFC 27: request [version, id, domain, address, identity, mechanism, credentials...];
    /// reply [version, id, status code, status text, user id, metadata].
    static func answer(_ request: [[UInt8]], allowlists: [String: Set<[UInt8]>]) -> Reply {
        func reply(_ id: [UInt8], _ code: String, _ text: String, user: [UInt8] = []) -> [[UInt8]] {
            [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), user, []]
        }
        guard request.count >= 6, request[0] == Array("1.0".utf8) else {
            return Reply(frames: reply(request.count > 1 ? request[1] : [], "500", "malformed ZAP request"), accepted: false, domain: "", address: "")
        }
        let id = request[1]
        let domain = String(decoding: request[2], as: UTF8.self)
        let address = String(decoding: request[3], as: UTF8.self)
        let mechanism = String(decoding: request[5], as: UTF8.self)
        guard mechanism == "CURVE", request.count == 7, request[6].count == 32 else {
            return Reply(frames: reply(id, "400", "CURVE required"), accepted: false, domain: domain, address: address)
        }
        let key = request[6]
        guard allowlists[domain]?.contains(key) == true, let userID = Z85.encode(key) else {
            return Reply(frames: reply(id, "400", "key not allowed"), accepted: false, domain: domain, address: address)
        }
        return Reply(frames: reply(id, "200", "OK", user: Array(userID.utf8)), accepted: true, domain: domain, address: address)
    }
}
