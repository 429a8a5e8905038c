import ZMQ

extension SocketFactory {
    /// A server socket: with security, a CURVE server whose peers must be on the allowlist of
    /// `domain` (ZAP, failing closed); without, a plain socket.
    func makeServer(_ type: SocketType, domain: RoleSecurity.Domain) throws -> Socket {
        let socket = try make(type)
        guard let security else { return socket }
        try socket.set(.curveServer, true)
        try socket.set(.curveSecretKey, security.secretKey)
        try socket.set(.zapDomain, domain.rawValue)
        try socket.set(.zapEnforceDomain, true)
        return socket
    }

    /// A client socket: with security, a CURVE client of the server whose public key is
    /// `serverKey`.
    func makeClient(_ type: SocketType, serverKey: [UInt8]?, immediate: Bool = true) throws -> Socket {
        let socket = try make(type, immediate: immediate)
        guard let security else { return socket }
        try socket.set(.curvePublicKey, security.publicKey)
        try socket.set(.curveSecretKey, security.secretKey)
        if let serverKey { try socket.set(.curveServerKey, serverKey) }
        return socket
    }

    /// Start-up self-test of a CURVE server bound at `endpoint`: a stranger with a fresh random
    /// key connects and must be turned away. Throws `failsOpen` when it is accepted, and
    /// `selfTestInconclusive` when no verdict comes within `timeout`.
    func verifyRejectsStrangers(_ type: SocketType, boundAt endpoint: String, timeout: Duration = .seconds(5)) throws {
        guard let security, endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://") else { return }
        let stranger = try CurveKeyPair.generate()
        let strangerKey = Z85.decode(stranger.publicKey)!
        _ = ZAPAuthenticator.probeKeys.update { $0.insert(strangerKey) }
        let peerType: SocketType = type == .router ? .dealer : .push
        var defaults = SocketDefaults.standard
        defaults.linger = .zero
        // The probe lives in a context of its own: a probe sharing the server's context left the
        // server's later handshakes stalled in libzmq 4.3.4.
        let probe = try Socket(Context(), peerType, defaults: defaults)
        defer { probe.close() }
        try probe.set(.curvePublicKey, strangerKey)
        try probe.set(.curveSecretKey, Z85.decode(stranger.secretKey)!)
        try probe.set(.curveServerKey, security.publicKey)
        let monitor = try probe.monitor()
        defer { monitor.socket.close() }
        try probe.connect(Self.connectable(endpoint))
        let verdict = try monitor.waitFor(
            [.handshakeSucceeded, .handshakeFailedAuth, .handshakeFailedProtocol, .handshakeFailedNoDetail], timeout: timeout)
        guard let verdict else {
            throw SecurityError(.selfTestInconclusive, "no handshake verdict from \(endpoint) within \(timeout); refusing to run")
        }
        if verdict.kind == .handshakeSucceeded {
            throw SecurityError(.failsOpen, "\(endpoint) accepted a key that is on no allowlist; refusing to run")
        }
    }

    /// A wildcard bind (`tcp://*:P`, `tcp://0.0.0.0:P`) is reached on loopback.
    static func connectable(_ endpoint: String) -> String {
        endpoint.replacingOccurrences(of: "tcp://0.0.0.0:", with: "tcp://127.0.0.1:")
            .replacingOccurrences(of: "tcp://*:", with: "tcp://127.0.0.1:")
            .replacingOccurrences(of: "tcp://[::]:", with: "tcp://[::1]:")
    }
}
