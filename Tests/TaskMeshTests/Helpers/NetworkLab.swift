import Foundation

/// A small network of Linux network namespaces for fault tests: one namespace per host, each
/// joined by a veth pair to a bridge in a switch namespace of its own, with the address
/// `10.77.0.<n>` (n from 1, in the order of `hosts`). Addresses and ports live only inside the
/// namespaces the lab makes, so labs never collide with each other or with the machine's own
/// network, and fixed ports are safe. Faults are iptables rules inside a host's namespace, so
/// the host's processes see a real network losing their packets (TCP retransmits, no resets).
///
/// Needs root, `ip` (iproute2) and `iptables`; `unavailable` says what is missing. The lab removes
/// its namespaces when it is released; kill the processes running in them first.
final class NetworkLab: @unchecked Sendable {
    // @unchecked: every field is set once in `init` and only read afterwards.

    /// Which of a host's packets a cut drops.
    enum Direction: String, Sendable, CaseIterable {
        /// Both ways: the host is partitioned from every other.
        case both
        /// What reaches the host: it sends, and hears nothing.
        case inbound
        /// What the host sends: it hears, and nothing it sends arrives.
        case outbound
    }

    struct CommandFailed: Error, CustomStringConvertible {
        let command: [String]
        let status: Int32
        let output: String
        var description: String { "\(command.joined(separator: " ")) exited with \(status): \(output)" }
    }

    let hosts: [String]
    private let prefix: String
    private var made: [String] = []

    /// Why a lab cannot be made on this machine (not root, a tool missing, namespaces refused),
    /// or nil when it can.
    static let unavailable: String? = {
        guard getuid() == 0 else { return "network namespaces need root" }
        for tool in ["/usr/sbin/ip", "/usr/sbin/iptables"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing (scripts/setup.sh installs it)"
        }
        let probe = "tmprobe\(getpid())"
        do {
            try run(["ip", "netns", "add", probe])
            defer { _ = try? run(["ip", "netns", "del", probe]) }
            try run(["ip", "netns", "exec", probe, "iptables", "-L", "-n"])
        } catch {
            return "cannot make a network namespace with iptables: \(error)"
        }
        return nil
    }()

    /// Makes the namespaces, the bridge and the links; every host's link and loopback are up.
    init(hosts: [String]) throws {
        precondition(hosts.count < 200, "a lab of \(hosts.count) hosts")
        self.hosts = hosts
        prefix = "tm" + String(UInt32.random(in: 0..<(1 << 20)), radix: 16)
        do {
            let bridgeSpace = namespace("sw")
            try Self.run(["ip", "netns", "add", bridgeSpace])
            made.append(bridgeSpace)
            try Self.run(["ip", "-n", bridgeSpace, "link", "add", "br0", "type", "bridge"])
            try Self.run(["ip", "-n", bridgeSpace, "link", "set", "br0", "up"])
            for (index, host) in hosts.enumerated() {
                let space = namespace(host)
                try Self.run(["ip", "netns", "add", space])
                made.append(space)
                let hostEnd = "\(prefix)h\(index)", switchEnd = "\(prefix)s\(index)"
                try Self.run(["ip", "link", "add", hostEnd, "type", "veth", "peer", "name", switchEnd])
                try Self.run(["ip", "link", "set", hostEnd, "netns", space])
                try Self.run(["ip", "link", "set", switchEnd, "netns", bridgeSpace])
                try Self.run(["ip", "-n", bridgeSpace, "link", "set", switchEnd, "master", "br0", "up"])
                try Self.run(["ip", "-n", space, "addr", "add", "\(address(of: host))/24", "dev", hostEnd])
                try Self.run(["ip", "-n", space, "link", "set", hostEnd, "up"])
                try Self.run(["ip", "-n", space, "link", "set", "lo", "up"])
            }
        } catch {
            removeNamespaces()
            throw error
        }
    }

    deinit { removeNamespaces() }

    private func removeNamespaces() {
        for space in made.reversed() { _ = try? Self.run(["ip", "netns", "del", space]) }
        made.removeAll()
    }

    private func namespace(_ host: String) -> String { "\(prefix)-\(host)" }

    /// The host's address on the lab's network.
    func address(of host: String) -> String {
        guard let index = hosts.firstIndex(of: host) else { preconditionFailure("no host \(host) in the lab") }
        return "10.77.0.\(index + 1)"
    }

    /// The program and arguments that run a command on `host` (in its namespace), for
    /// `ChildProcess` and `RunningHub`'s launchers; `then` is put before the command (such as
    /// `nice -n 19`).
    func launcher(on host: String, then: [String] = []) -> [String] {
        ["/usr/sbin/ip", "netns", "exec", namespace(host)] + then
    }

    /// Drops the host's packets in `direction`, to and from every other host (its loopback is
    /// untouched), until `heal`.
    func cut(_ host: String, _ direction: Direction) throws {
        if direction != .outbound { try iptables(host, ["-A", "INPUT", "!", "-i", "lo", "-j", "DROP"]) }
        if direction != .inbound { try iptables(host, ["-A", "OUTPUT", "!", "-o", "lo", "-j", "DROP"]) }
    }

    /// Drops each packet to or from the host with probability `percent` / 100, until `heal`.
    func lose(_ host: String, percent: Int) throws {
        let probability = String(format: "%.2f", Double(percent) / 100)
        for (chain, flag) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            try iptables(host, ["-A", chain, "!", flag, "lo", "-m", "statistic", "--mode", "random", "--probability", probability, "-j", "DROP"])
        }
    }

    /// Removes every fault `cut` and `lose` put on the host.
    func heal(_ host: String) throws {
        try iptables(host, ["-F"])
    }

    private func iptables(_ host: String, _ arguments: [String]) throws {
        try Self.run(["ip", "netns", "exec", namespace(host), "iptables", "-w"] + arguments)
    }

    /// Runs a command to its end (at most 30 s); throws `CommandFailed` with its output when it
    /// fails. Its output goes to files, not a pipe: a pipe's write end can leak into a process
    /// another test starts at the same moment, and reading to its end would then wait for that one.
    @discardableResult
    static func run(_ command: [String]) throws -> String {
        let child = try ChildProcess("command", executable: "/usr/bin/env", command, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        let deadline = ContinuousClock.now + .seconds(30)
        while child.isRunning && ContinuousClock.now < deadline { usleep(2_000) }
        let text = child.stdout + child.stderr
        guard !child.isRunning, child.terminationStatus == 0 else {
            throw CommandFailed(command: command, status: child.terminationStatus, output: text)
        }
        return text
    }
}
