import Logging
import ZMQ

/// The keys one process uses, loaded from the files its topology names.
struct RoleSecurity: Sendable {
    /// ZAP domains: which allowlist a server socket checks.
    enum Domain: String, Sendable {
        case clients = "taskmesh.clients"
        case workers = "taskmesh.workers"
    }

    let keyPair: CurveKeyPair
    let publicKey: [UInt8]
    let secretKey: [UInt8]
    let sinkKey: [UInt8]?
    let brokerKey: [UInt8]?
    let allowed: [Domain: Set<[UInt8]>]

    /// Loads the keys of `role`; `keyFile` overrides the topology's key file for the role.
    /// Returns nil for a topology without a `security` section.
    static func load(_ topology: Topology, role: Topology.Role, keyFile: String? = nil) throws(SecurityError) -> RoleSecurity? {
        guard let security = topology.security else { return nil }
        guard LibZMQ.hasCurve else {
            throw SecurityError(.curveUnavailable, "this libzmq was built without CURVE; the topology has a security section")
        }
        guard let path = keyFile ?? security.keys[role] else {
            throw SecurityError(.missingKey, "security.keys.\(role.rawValue) is not set and no key file was given")
        }
        let pair = try KeyFiles.readSecret(path)
        return RoleSecurity(
            keyPair: pair,
            publicKey: Z85.decode(pair.publicKey)!,
            secretKey: Z85.decode(pair.secretKey)!,
            sinkKey: try security.sinkPublicKey.map { (path) throws(SecurityError) in try KeyFiles.readPublic(path) },
            brokerKey: try security.brokerPublicKey.map { (path) throws(SecurityError) in try KeyFiles.readPublic(path) },
            allowed: [
                .clients: try KeyFiles.readAllowlist(security.allowedClients),
                .workers: try KeyFiles.readAllowlist(security.allowedWorkers),
            ]
        )
    }

    /// The allowlists as the topology's files say now (for a reload).
    static func currentAllowlists(_ topology: Topology) throws(SecurityError) -> [Domain: Set<[UInt8]>] {
        guard let security = topology.security else { return [:] }
        return [
            .clients: try KeyFiles.readAllowlist(security.allowedClients),
            .workers: try KeyFiles.readAllowlist(security.allowedWorkers),
        ]
    }

    /// The server key a role needs, or a clear error naming the missing field.
    func require(_ key: [UInt8]?, _ field: String) throws(SecurityError) -> [UInt8] {
        guard let key else { throw SecurityError(.missingKey, "\(field) is not set") }
        return key
    }

    /// Whether the ZAP user id of a received message (the Z85 key the handshake proved) is
    /// `expected`.
    static func identity(_ userID: String?, is expected: [UInt8]) -> Bool {
        guard let userID, let key = Z85.decode(userID) else { return false }
        return key == expected
    }

    /// Whether a client id belongs to the key the handshake proved: a secure client's id is its
    /// 32-byte public key followed by random bytes, so several processes can share a key while
    /// no key can claim another's ids.
    static func identity(_ userID: String?, owns clientID: [UInt8]) -> Bool {
        guard clientID.count > 32 else { return false }
        return identity(userID, is: Array(clientID.prefix(32)))
    }
}

/// Refuses plaintext tcp off loopback unless the topology says `insecure: true`, and warns when
/// it does.
func checkPlaintext(_ topology: Topology, endpoints: [String], logger: Logger) throws(SecurityError) {
    guard topology.security == nil else { return }
    let exposed = endpoints.filter { !isLoopback($0) }
    guard !exposed.isEmpty else { return }
    guard topology.insecure else {
        throw SecurityError(.plaintextOffLoopback,
                            "plaintext tcp on \(exposed.joined(separator: ", ")) needs a security section (CURVE) or insecure: true")
    }
    logger.warning("INSECURE: plaintext tcp beyond loopback; anyone on the network can read and inject jobs",
                   metadata: ["endpoints": "\(exposed.joined(separator: ", "))"])
}

/// inproc, ipc (file permissions guard it) and loopback tcp stay on this machine.
func isLoopback(_ endpoint: String) -> Bool {
    guard endpoint.hasPrefix("tcp://") else { return true }
    let rest = endpoint.dropFirst(6)
    let host = rest.hasPrefix("[") ? String(rest.prefix { $0 != "]" }.dropFirst()) : String(rest.prefix { $0 != ":" })
    return host == "localhost" || host == "::1" || host.hasPrefix("127.")
}
