import Foundation
import Synchronization
import Testing
@testable import TaskMesh
import ZMQ

/// Where SwiftPM put the executables this test bundle depends on.
enum BuiltProducts {
    static var directory: URL {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent()
    }

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    static var taskmesh: String { path("taskmesh") }
}

/// A real child process whose output goes to files (so it never blocks on a full pipe). Its
/// `deinit` kills and reaps it, so no test leaves a process behind: keep a reference (and use it
/// at the end of the test) for as long as the process must live.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only mutated before `run()`; Process itself is thread-safe for
    // the calls made here.
    let name: String
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    init(_ name: String, executable: String = BuiltProducts.taskmesh, _ arguments: [String], environment: [String: String] = [:]) throws {
        self.name = name
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taskmesh-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        stdoutURL = directory.appendingPathComponent("\(name).out")
        stderrURL = directory.appendingPathComponent("\(name).err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
    }

    deinit {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        // Bounded: Foundation can miss a child's exit (it then reports the zombie as running
        // for ever), and a test must never hang on one.
        let deadline = ContinuousClock.now + .seconds(10)
        while isRunning && ContinuousClock.now < deadline { usleep(5_000) }
    }

    var pid: Int32 { process.processIdentifier }

    /// Whether the process still runs: it has not exited, by Foundation's account or by the
    /// kernel's (a `waitid` that leaves it for Foundation to reap).
    var isRunning: Bool { process.isRunning && peekExit() == nil }

    /// Its exit status, or the number of the signal that ended it; -1 while it runs.
    var terminationStatus: Int32 {
        if !process.isRunning { return process.terminationStatus }
        return peekExit()?.status ?? -1
    }

    /// Whether it ended by exiting (not by a signal); false while it runs.
    var exited: Bool {
        if !process.isRunning { return process.terminationReason == .exit }
        return peekExit()?.signalled == false
    }

    /// How the process ended, from the kernel, without reaping it (Foundation still does), kept
    /// once seen; nil while it runs. Once Foundation has reaped it, Foundation's account.
    private func peekExit() -> (signalled: Bool, status: Int32)? {
        if let seen = observedExit.withLock({ $0 }) { return seen }
        var info = siginfo_t()
        let found: (signalled: Bool, status: Int32)?
        if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 {
            guard info._sifields._sigchld.si_pid == pid else { return nil }
            found = (info.si_code != CLD_EXITED, info._sifields._sigchld.si_status)
        } else {
            // Reaped by Foundation, which says so a moment later.
            let deadline = ContinuousClock.now + .seconds(2)
            while process.isRunning && ContinuousClock.now < deadline { usleep(1_000) }
            guard !process.isRunning else { return nil }
            found = (process.terminationReason != .exit, process.terminationStatus)
        }
        observedExit.withLock { $0 = found }
        return found
    }
    private let observedExit = Mutex<(signalled: Bool, status: Int32)?>(nil)

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for a stdout line starting with `prefix`; returns it without the prefix.
    func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(30)) async throws -> String {
        var found: String?
        try await eventually("\(name) prints \"\(prefix)\" (stderr: \(stderr.suffix(600)))", timeout: timeout) {
            found = stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
            return found != nil || !isRunning
        }
        guard let found else {
            Issue.record("\(name) exited with \(terminationStatus) before printing \"\(prefix)\": \(stderr.suffix(2000))")
            throw EventuallyTimeout(what: prefix)
        }
        return found
    }

    /// Waits for the process to exit and returns its status.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await eventually("\(name) exits", timeout: timeout) { !isRunning }
        return terminationStatus
    }
}

/// Parses `key=value key=value` as printed after "ready ".
func fields(_ line: String) -> [String: String] {
    Dictionary(line.split(separator: " ").compactMap { part -> (String, String)? in
        guard let eq = part.firstIndex(of: "=") else { return nil }
        return (String(part[..<eq]), String(part[part.index(after: eq)...]))
    }, uniquingKeysWith: { $1 })
}

/// A direct-mode topology file on loopback with fast heartbeats, for process tests.
struct TestTopology {
    let path: String

    /// `extra`: more top-level YAML, such as a `limits:` section.
    init(resultsPort: Int = 0, clientsPort: Int = 0, deadline: String = "10s", interval: String = "200ms",
         liveness: Int = 3, drainTimeout: String = "3s", extra: String = "") throws {
        let yaml = """
        mode: direct
        sink:
          results: { bind: "tcp://127.0.0.1:\(resultsPort)" }
          clients: { bind: "tcp://127.0.0.1:\(clientsPort)" }
        worker:
          bind: tcp://127.0.0.1:0
          concurrency: 4
          drain_timeout: \(drainTimeout)
        client:
          deadline: \(deadline)
        heartbeat:
          interval: \(interval)
          liveness: \(liveness)
        \(extra)
        """
        path = try temporaryTopologyFile("topology", yaml)
    }

    var topology: Topology { get throws { try Topology.load(path: path) } }
}

/// A loopback tcp port that was free a moment ago, for the few tests that need fixed ports
/// (`taskmesh up`, the examples): the system hands out ephemeral ports round-robin, so a port
/// just released is not handed to the next parallel test.
func freePort() throws -> Int {
    let range = FreePorts.range
    for _ in 0..<200 {
        let port = Int.random(in: range)
        guard FreePorts.handedOut.withLock({ $0.insert(port).inserted }) else { continue }
        let context = try Context()
        let socket = try Socket(context, .pull)
        defer { socket.close() }
        if (try? socket.bind("tcp://127.0.0.1:\(port)")) != nil { return port }
    }
    throw FreePorts.Exhausted(range: range)
}

/// Where `freePort` looks: below the kernel's ephemeral range (`ip_local_port_range`), from
/// which every outgoing connection and every bind to port 0 takes its port, so that none can
/// take a port between `freePort` and the bind of the role it was picked for; each port is
/// handed out once per run, so parallel tests never share one.
enum FreePorts {
    static let handedOut = Mutex<Set<Int>>([])
    static let range: ClosedRange<Int> = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let ephemeralStart = text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
        return 10_000...max(10_999, min(ephemeralStart, 65_536) - 1)
    }()

    struct Exhausted: Error, CustomStringConvertible {
        let range: ClosedRange<Int>
        var description: String { "no free TCP port in \(range) after 200 tries" }
    }
}

/// A direct-mode topology with fixed free ports, for roles started without `--sink`.
func fixedPortTopology(workers: Int = 2) throws -> String {
    let results = try freePort(), clients = try freePort()
    let yaml = """
    mode: direct
    sink:
      results: { bind: "tcp://127.0.0.1:\(results)" }
      clients: { bind: "tcp://127.0.0.1:\(clients)" }
    worker:
      bind: tcp://127.0.0.1:0
      processes: \(workers)
      drain_timeout: 3s
    heartbeat:
      interval: 200ms
      liveness: 3
    """
    return try temporaryTopologyFile("fixed", yaml)
}

/// Submits `jobs` echo jobs at once (each payload `size` bytes, starting with the job's number)
/// and tallies their outcomes (see `echoTally`).
func flood(_ client: Client, jobs: Int, size: Int) async throws -> [String: Int] {
    let payloads = (0..<jobs).map { n in
        withUnsafeBytes(of: UInt32(n).bigEndian) { Array($0) } + [UInt8](repeating: 7, count: max(0, size - 4))
    }
    return try await echoTally(client, payloads)
}

/// Submits an echo job per payload, all at once, and tallies their outcomes: "ok", "wrong" (a
/// result other than its payload) or the error code.
func echoTally(_ client: Client, _ payloads: [[UInt8]]) async throws -> [String: Int] {
    let handles = try payloads.map { try client.enqueue("echo", $0) }
    var outcomes: [String: Int] = [:]
    for (handle, payload) in zip(handles, payloads) {
        do throws(JobError) {
            outcomes[try await handle.value() == payload ? "ok" : "wrong", default: 0] += 1
        } catch {
            outcomes["\(error.code)", default: 0] += 1
        }
    }
    return outcomes
}

/// A raw DEALER speaking as the client `id` to a sink's or broker's client endpoint: sends give
/// up after 5 s, receives after `receiveTimeout` (nil: they wait).
func rawClientDealer(_ context: Context, id: [UInt8], connectingTo endpoint: String,
                     receiveTimeout: Duration? = nil) throws -> Socket {
    let socket = try Socket(context, .dealer)
    try socket.set(.routingID, id)
    try socket.connect(endpoint)
    try socket.set(.sendTimeout, .seconds(5))
    if let receiveTimeout { try socket.set(.receiveTimeout, receiveTimeout) }
    return socket
}

/// A raw DEALER speaking as a worker to a broker's workers endpoint: sends give up after 5 s,
/// receives after 10 s.
func rawWorkerDealer(_ context: Context, connectingTo endpoint: String) throws -> Socket {
    let socket = try Socket(context, .dealer)
    try socket.connect(endpoint)
    try socket.set(.sendTimeout, .seconds(5))
    try socket.set(.receiveTimeout, .seconds(10))
    return socket
}
