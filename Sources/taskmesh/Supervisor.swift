import Foundation
import Synchronization

/// Starts, watches and stops the child processes of `taskmesh up`. Safe from any thread.
///
/// Each child's standard output is copied to this process's, line by line, so that the
/// supervisor sees its `ready` line; its standard error is this process's. Children learn this
/// process's pid from `TASKMESH_SUPERVISOR_PID` and stop gracefully once it is gone
/// (`SupervisorWatch`), so that even a supervisor killed with SIGKILL leaves nothing running.
final class Supervisor: Sendable {
    enum Event: Sendable {
        /// The role printed its `ready` line.
        case ready(role: String)
        /// The role's process ended; `ranFor` from its start, `quickRestarts` as it was started with.
        case exited(role: String, how: String, arguments: [String], ranFor: Duration, wasReady: Bool, quickRestarts: Int)
        /// The hub did not say ready within `readyTimeout`.
        case hubTimedOut
        /// SIGINT or SIGTERM.
        case stop
    }

    /// The variable that tells a child which process supervises it.
    static let pidVariable = "TASKMESH_SUPERVISOR_PID"

    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let executable: String
    private let logLevel: String
    /// The role that stops last: "sink" or "broker".
    let hub: String
    private struct State {
        var children: [String: Process] = [:]
        var stopping = false
    }
    private let state = Mutex(State())

    init(executable: String, logLevel: String, hub: String) {
        self.hub = hub
        (events, continuation) = AsyncStream<Event>.makeStream()
        self.executable = executable
        self.logLevel = logLevel
    }

    var isStopping: Bool { state.withLock { $0.stopping } }

    func post(_ event: Event) { continuation.yield(event) }

    /// Starts `role` (`taskmesh ARGUMENTS --log-level L`). A process that cannot be started at
    /// all is reported as exited with status 127.
    func launch(role: String, arguments: [String], quickRestarts: Int = 0) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--log-level", logLevel]
        process.environment = ProcessInfo.processInfo.environment.merging([Self.pidVariable: "\(getpid())"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        let lines = ReadyLineWatch(role: role, events: continuation)
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            lines.scan(data)  // first: once the line is out, its role counts as ready
            FileHandle.standardOutput.write(data)
        }
        let started = ContinuousClock.now
        process.terminationHandler = { [continuation] finished in
            let how = finished.terminationReason == .uncaughtSignal ? "was killed by signal \(finished.terminationStatus)"
                                                                     : "exited with status \(finished.terminationStatus)"
            continuation.yield(.exited(role: role, how: how, arguments: arguments,
                                       ranFor: ContinuousClock.now - started, wasReady: lines.sawReady, quickRestarts: quickRestarts))
        }
        do {
            try process.run()
            state.withLock { $0.children[role] = process }
            FileHandle.standardOutput.write(Data("started \(role) pid=\(process.processIdentifier)\n".utf8))
        } catch {
            writeError("taskmesh up: cannot start \(role): \(error)")
            continuation.yield(.exited(role: role, how: "could not start", arguments: arguments, ranFor: .zero, wasReady: false,
                                       quickRestarts: quickRestarts))
        }
    }

    func requestStop() {
        state.withLock { $0.stopping = true }
        continuation.yield(.stop)
    }

    /// SIGTERM to the workers, then the hub; SIGKILL to whatever is still running after `grace`.
    /// Ends `events`.
    func stopAll(grace: Duration) async {
        let all = state.withLock { state in
            state.stopping = true
            return state.children
        }
        let workers = all.filter { $0.key != hub }.map(\.value)
        for process in workers where process.isRunning { process.terminate() }
        await Self.waitForExit(workers, within: grace)
        if let last = all[hub], last.isRunning {
            last.terminate()
            await Self.waitForExit([last], within: grace)
        }
        for process in all.values where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        continuation.finish()
    }

    private static func waitForExit(_ processes: [Process], within grace: Duration) async {
        let deadline = ContinuousClock.now + grace
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// Finds a child's `ready ` line in its output as it arrives, in chunks that may split lines.
private final class ReadyLineWatch: Sendable {
    private let role: String
    private let events: AsyncStream<Supervisor.Event>.Continuation
    /// The unfinished last line so far, and whether a `ready` line was seen.
    private let state = Mutex((partial: [UInt8](), ready: false))

    init(role: String, events: AsyncStream<Supervisor.Event>.Continuation) {
        self.role = role
        self.events = events
    }

    var sawReady: Bool { state.withLock { $0.ready } }

    func scan(_ data: Data) {
        let becameReady = state.withLock { state -> Bool in
            guard !state.ready else { return false }
            for byte in data {
                if byte == UInt8(ascii: "\n") {
                    if state.partial.starts(with: Array("ready ".utf8)) {
                        state.ready = true
                        state.partial = []
                        return true
                    }
                    state.partial.removeAll(keepingCapacity: true)
                } else if state.partial.count < 4096 {
                    state.partial.append(byte)
                }
            }
            return false
        }
        if becameReady { events.yield(.ready(role: role)) }
    }
}

/// How long `taskmesh up` waits before it starts a role that exited again: 1 s, doubling up to
/// 30 s while the role keeps exiting quickly; a run of `healthyAfter` or more counts as healthy,
/// and the next restart waits 1 s again.
struct RestartBackoff {
    static let first: Duration = .seconds(1)
    static let longest: Duration = .seconds(30)
    let healthyAfter: Duration

    /// The wait before the next start of a role that ran for `ranFor`, having been started after
    /// `quickRestarts` quick exits in a row; and the count its next start carries.
    func next(ranFor: Duration, quickRestarts: Int) -> (delay: Duration, quickRestarts: Int) {
        let inARow = ranFor >= healthyAfter ? 0 : quickRestarts
        let delay = min(Self.longest, Self.first * (1 << min(inARow, 5)))
        return (delay, inARow + 1)
    }
}
