import ArgumentParser
import Dispatch
import Foundation
import TaskMesh

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start every role a topology names on this machine; stop them all on Ctrl-C.",
        discussion: """
        Starts the sink (direct mode) or broker (reliable mode), waits until it is ready, then \
        starts worker.processes workers, as child processes, and prints "started ROLE pid=N" for \
        each (their own output follows). A role that fails before it is ready on its first start \
        (a port in use, a bad key file) stops everything: up exits with status 1. A role that \
        exits later is restarted after 1 s, doubling to 30 s while it keeps exiting within \
        --healthy-after of its start. SIGINT or SIGTERM stops the workers gracefully first, then \
        the sink or broker; if up itself is killed, its children notice within a second and stop \
        gracefully.
        """)

    @Argument(help: "The topology file.")
    var file: String

    @Option(help: "How many workers to start, overriding worker.processes.")
    var workers: Int?

    @Option(help: "How long a role must run for its next restart to wait 1 s again.")
    var healthyAfter = DurationArgument(.seconds(30))

    @Flag(help: "Start workers with the fault handlers crash and hang (for exercising fault handling).")
    var faultHandlers = false

    @OptionGroup var logOptions: LogOptions

    /// How long the sink or broker may take to say it is ready.
    static let hubReadyTimeout: Duration = .seconds(30)

    func run() async throws {
        let topology: Topology
        do { topology = try Topology.load(path: file) } catch { throw ValidationError("\(error)") }
        guard topology.mode != .local else {
            throw ValidationError("taskmesh up starts the processes of a direct or reliable topology; \(file) is local (try taskmesh demo)")
        }
        if let workers, !(0...Topology.Worker.maximumProcesses).contains(workers) {
            throw ValidationError("--workers must be 0 to \(Topology.Worker.maximumProcesses), got \(workers)")
        }
        let hub = topology.mode == .reliable ? "broker" : "sink"
        let supervisor = Supervisor(executable: Self.ownExecutable(), logLevel: logOptions.logLevel.rawValue, hub: hub)
        let stop = Self.stopSignals(into: supervisor)
        defer { stop.forEach { $0.cancel() } }
        let plan = Plan(file: file, hub: hub, workers: workers ?? topology.worker.processes, faultHandlers: faultHandlers,
                        backoff: RestartBackoff(healthyAfter: healthyAfter.duration), grace: topology.worker.drainTimeout + .seconds(5))
        let status = await plan.supervise(supervisor)
        if status != 0 { throw ExitCode(status) }
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

/// What `taskmesh up` starts and how it reacts to its children.
private struct Plan: Sendable {
    let file: String
    let hub: String
    let workers: Int
    let faultHandlers: Bool
    let backoff: RestartBackoff
    /// How long stopping may wait for each group of children.
    let grace: Duration

    /// Starts the hub, then (once it is ready) the workers, and restarts what exits until a stop
    /// is asked for or a first start fails. Returns up's exit status.
    func supervise(_ supervisor: Supervisor) async -> Int32 {
        await withTaskGroup(of: Void.self) { restarts -> Int32 in
            defer { restarts.cancelAll() }
            supervisor.launch(role: hub, arguments: [hub, "-t", file])
            restarts.addTask {
                try? await Task.sleep(for: UpCommand.hubReadyTimeout)
                supervisor.post(.hubTimedOut)
            }
            // Roles that have not been ready yet since up started them.
            var firstStarts: Set<String> = [hub]
            var workersStarted = false
            for await event in supervisor.events {
                switch event {
                case .ready(let role):
                    firstStarts.remove(role)
                    guard role == hub, !workersStarted, !supervisor.isStopping else { continue }
                    workersStarted = true
                    for index in 0..<workers {
                        let role = "worker-\(index + 1)"
                        firstStarts.insert(role)
                        supervisor.launch(role: role, arguments: ["worker", "-t", file] + (faultHandlers ? ["--fault-handlers"] : []))
                    }
                    writeError("taskmesh up: \(hub) ready, \(workers) workers started; Ctrl-C stops them")
                case .hubTimedOut:
                    guard firstStarts.contains(hub), !supervisor.isStopping else { continue }
                    writeError("taskmesh up: \(hub) did not say ready within \(DurationSyntax.format(UpCommand.hubReadyTimeout)); stopping")
                    await supervisor.stopAll(grace: grace)
                    return 1
                case .exited(let role, let how, let arguments, let ranFor, let wasReady, let quickRestarts):
                    if supervisor.isStopping { continue }
                    if firstStarts.contains(role) && !wasReady {
                        writeError("taskmesh up: \(role) \(how) before it was ready (its error is above); stopping")
                        await supervisor.stopAll(grace: grace)
                        return 1
                    }
                    let (delay, next) = backoff.next(ranFor: ranFor, quickRestarts: quickRestarts)
                    writeError("taskmesh up: \(role) \(how) after \(DurationSyntax.format(ranFor.roundedToMilliseconds)); "
                               + "restarting in \(DurationSyntax.format(delay))")
                    restarts.addTask {
                        try? await Task.sleep(for: delay)
                        if !Task.isCancelled && !supervisor.isStopping {
                            supervisor.launch(role: role, arguments: arguments, quickRestarts: next)
                        }
                    }
                case .stop:
                    writeError("taskmesh up: stopping")
                    await supervisor.stopAll(grace: grace)
                    return 0
                }
            }
            return 0
        }
    }
}

private extension Duration {
    var roundedToMilliseconds: Duration {
        let (seconds, attoseconds) = components
        return .seconds(seconds) + .milliseconds(attoseconds / 1_000_000_000_000_000)
    }
}
