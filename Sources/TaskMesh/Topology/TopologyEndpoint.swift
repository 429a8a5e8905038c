/// A ZeroMQ endpoint as written in a topology file, split into its parts and checked for shape.
/// Whether it can actually be bound or reached is known only when a socket tries.
struct TopologyEndpoint: Equatable {
    enum Transport: String, CaseIterable {
        case tcp, ipc, inproc
    }

    let transport: Transport
    /// Everything after `scheme://`.
    let address: String
    /// For tcp: the host as written (`*`, `127.0.0.1`, `[::1]`, `sink.example`).
    let host: String?
    /// For tcp: the port as written (`5701`, `0` or `*`).
    let port: String?

    /// The longest ipc path the platform's socket address holds.
    #if os(Linux)
    static let maximumIPCPathLength = 107
    #else
    static let maximumIPCPathLength = 103
    #endif

    var text: String { "\(transport.rawValue)://\(address)" }

    /// A tcp host that means "every interface": fine to bind, impossible to connect to.
    var hasWildcardHost: Bool {
        guard let host else { return false }
        return host == "*" || host == "0.0.0.0" || host == "[::]"
    }

    /// False for tcp port 0 or `*`, which let the system pick a free port at bind time.
    var hasFixedPort: Bool {
        guard let port else { return true }
        return port != "*" && Int(port) != 0
    }

    /// The endpoint a peer on this machine connects to for this bind endpoint: a wildcard host
    /// becomes loopback (`127.0.0.1`, or `[::1]` for `[::]`); anything else is unchanged.
    var connectable: TopologyEndpoint {
        guard hasWildcardHost, let port else { return self }
        let loopback = host == "[::]" ? "[::1]" : "127.0.0.1"
        return TopologyEndpoint(transport: .tcp, address: "\(loopback):\(port)", host: loopback, port: port)
    }

    /// Checks the shape of `text`: a scheme of tcp://, ipc:// or inproc://; for tcp a host and a
    /// port from 0 to 65535 or `*` (IPv6 hosts in brackets); for ipc and inproc a non-empty name.
    static func parse(_ text: String) throws(ValueProblem) -> TopologyEndpoint {
        guard let separator = text.firstRange(of: "://"),
              let transport = Transport(rawValue: String(text[..<separator.lowerBound])) else {
            throw ValueProblem("an endpoint starts with tcp://, ipc:// or inproc://")
        }
        let address = String(text[separator.upperBound...])
        if address.contains(where: { $0 == " " || $0 == "\t" || $0.isNewline }) {
            throw ValueProblem("an endpoint cannot contain spaces")
        }
        switch transport {
        case .inproc:
            if address.isEmpty { throw ValueProblem("an inproc endpoint needs a name after inproc://") }
            return TopologyEndpoint(transport: .inproc, address: address, host: nil, port: nil)
        case .ipc:
            if address.isEmpty { throw ValueProblem("an ipc endpoint needs a path after ipc://") }
            if address.utf8.count > maximumIPCPathLength {
                throw ValueProblem("an ipc path can be at most \(maximumIPCPathLength) bytes long")
            }
            return TopologyEndpoint(transport: .ipc, address: address, host: nil, port: nil)
        case .tcp:
            let (host, port) = try splitHostAndPort(address)
            return TopologyEndpoint(transport: .tcp, address: address, host: host, port: port)
        }
    }

    private static func splitHostAndPort(_ address: String) throws(ValueProblem) -> (String, String) {
        let shape = ValueProblem("a tcp endpoint needs a host and a port, such as tcp://127.0.0.1:5701 or tcp://*:5701")
        guard let colon = address.lastIndex(of: ":") else { throw shape }
        let host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        if host.isEmpty || port.isEmpty { throw shape }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else {
                throw ValueProblem("an IPv6 host is written in brackets, such as tcp://[::1]:5701")
            }
        } else if host.contains(":") {
            throw ValueProblem("an IPv6 host is written in brackets, such as tcp://[::1]:5701")
        }
        if host.contains(where: { "/?#@;".contains($0) }) {
            throw ValueProblem("\"\(host)\" is not a host name or address")
        }
        if port != "*" {
            guard port.allSatisfy(\.isASCIIDigit), let number = Int(port), (0...65_535).contains(number) else {
                throw ValueProblem("a tcp port is a number from 0 to 65535, or * for a free port")
            }
        }
        return (host, port)
    }
}
