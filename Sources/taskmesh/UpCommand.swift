import ArgumentParser
import Dispatch
import Foundation
import TaskMesh

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start every role a topology names on this machine; stop them all on Ctrl-C.",
        discussion: """
        Starts the sink (direct mode) or broker (reliable mode) and worker.processes workers as \
        child processes and prints \
        "started ROLE pid=N" for each. A role that exits on its own is restarted with a backoff from \
        1 s doubling to 30 s. SIGINT or SIGTERM stops the workers gracefully first, then the sink or broker.
        """)

    @Argument(help: "The topology file.")
    var file: String

    @Option(help: "How many workers to start, overriding worker.processes.")
    var workers: Int?

    @Flag(help: "Start workers with the fault handlers crash and hang (for exercising fault handling).")
    var faultHandlers = false

    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        let topology: Topology
        do { topology = try Topology.load(path: file) } catch { throw ValidationError("\(error)") }
        guard topology.mode != .local else {
            throw ValidationError("taskmesh up starts the processes of a direct or reliable topology; \(file) is local (try taskmesh demo)")
        }
        let hub = topology.mode == .reliable ? "broker" : "sink"
        let supervisor = Supervisor(executable: Self.ownExecutable(), logLevel: logOptions.logLevel.rawValue, hub: hub)
        let events = supervisor.events
        let stop = Self.stopSignals(into: supervisor)

        supervisor.launch(role: hub, arguments: [hub, "-t", file])
        for index in 0..<(workers ?? topology.worker.processes) {
            supervisor.launch(role: "worker-\(index + 1)", arguments: ["worker", "-t", file] + (faultHandlers ? ["--fault-handlers"] : []))
        }
        writeError("taskmesh up: \(hub) and \(workers ?? topology.worker.processes) workers started; Ctrl-C stops them")

        for await event in events {
            switch event {
            case .exited(let role, let status, let arguments, let restarts):
                if supervisor.isStopping { continue }
                let delay = min(30, 1 << min(restarts, 5))
                writeError("taskmesh up: \(role) exited with status \(status); restarting in \(delay) s")
                Task {
                    try? await Task.sleep(for: .seconds(delay))
                    if !supervisor.isStopping { supervisor.launch(role: role, arguments: arguments, restarts: restarts + 1) }
                }
            case .stop:
                writeError("taskmesh up: stopping")
                await supervisor.stopAll(grace: topology.worker.drainTimeout + .seconds(5))
                stop.forEach { $0.cancel() }
                return
            }
        }
    }

    static func ownExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func stopSignals(into supervisor: Supervisor) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { supervisor.requestStop() }
            source.resume()
            return source
        }
    }
}

/// Starts, watches and stops the child processes of `taskmesh up`.
final class Supervisor: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.
    enum Event: Sendable {
        case exited(role: String, status: Int32, arguments: [String], restarts: Int)
        case stop
    }

    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let executable: String
    private let logLevel: String
    /// The role that stops last: "sink" or "broker".
    private let hub: String
    private let lock = NSLock()
    private var children: [String: Process] = [:]
    private var stopping = false

    init(executable: String, logLevel: String, hub: String) {
        self.hub = hub
        (events, continuation) = AsyncStream<Event>.makeStream()
        self.executable = executable
        self.logLevel = logLevel
    }

    var isStopping: Bool { lock.withLock { stopping } }

    func launch(role: String, arguments: [String], restarts: Int = 0) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--log-level", logLevel]
        process.terminationHandler = { [continuation] finished in
            continuation.yield(.exited(role: role, status: finished.terminationStatus, arguments: arguments, restarts: restarts))
        }
        do {
            try process.run()
            lock.withLock { children[role] = process }
            FileHandle.standardOutput.write(Data("started \(role) pid=\(process.processIdentifier)\n".utf8))
        } catch {
            writeError("taskmesh up: cannot start \(role): \(error)")
        }
    }

    func requestStop() {
        lock.withLock { stopping = true }
        continuation.yield(.stop)
    }

    /// SIGTERM to the workers, then the hub; SIGKILL to whatever is still running after `grace`.
    func stopAll(grace: Duration) async {
        let all = lock.withLock { children }
        let workers = all.filter { $0.key != hub }.map(\.value)
        for process in workers where process.isRunning { process.terminate() }
        await waitForExit(workers, within: grace)
        if let last = all[hub], last.isRunning {
            last.terminate()
            await waitForExit([last], within: grace)
        }
        for process in all.values where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        continuation.finish()
    }

    private func waitForExit(_ processes: [Process], within grace: Duration) async {
        let deadline = ContinuousClock.now + grace
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
