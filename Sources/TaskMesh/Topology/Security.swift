extension Topology {
    /// The roles of a mesh, as named in a topology's `security` section.
    public enum Role: String, Sendable, CaseIterable {
        case sink, broker, worker, client
    }

    /// CURVE encryption and authentication for every tcp and ipc endpoint (docs/SECURITY.md).
    /// Files hold keys in Z85 text; the topology holds only their paths, never a key.
    public struct Security: Sendable, Equatable {
        /// The secret key file of each role (`taskmesh keygen` writes them, mode 0600). A process
        /// uses its role's file unless given another (`--key`).
        public var keys: [Role: String]
        /// Public key files of the servers each role connects to: the sink or the broker.
        /// Workers are servers too in direct mode; their keys travel in the membership list.
        public var sinkPublicKey: String?
        public var brokerPublicKey: String?
        /// Public key files (or folders of `.pub` files) allowed to connect as clients and as
        /// workers. Servers reject every other key during the handshake.
        public var allowedClients: [String]
        public var allowedWorkers: [String]

        public init(keys: [Role: String] = [:], sinkPublicKey: String? = nil, brokerPublicKey: String? = nil,
                    allowedClients: [String] = [], allowedWorkers: [String] = []) {
            self.keys = keys
            self.sinkPublicKey = sinkPublicKey
            self.brokerPublicKey = brokerPublicKey
            self.allowedClients = allowedClients
            self.allowedWorkers = allowedWorkers
        }
    }
}
