import Synchronization
public import ArgumentParser
import Dispatch
import Foundation
public import Logging
import TaskMesh

/// The topology file every role reads.
struct TopologyOptions: ParsableArguments {
    @Option(name: [.customShort("t"), .long], help: ArgumentHelp(
        "Topology file (YAML). Default: $\(Topology.environmentVariable) if set, else the in-process local mode.",
        valueName: "file"))
    var topology: String?

    @Option(help: ArgumentHelp("This process's secret key file, overriding the topology's security.keys for its role.", valueName: "file"))
    var key: String?

    /// The topology, with `--key` applied to `role`.
    func load(role: Topology.Role? = nil) throws -> Topology {
        var loaded: Topology
        do {
            if let topology { loaded = try Topology.load(path: topology) } else { loaded = try Topology.fromEnvironment() }
        } catch {
            throw ValidationError("\(error)")
        }
        if let key, let role {
            guard loaded.security != nil else { throw ValidationError("--key needs a topology with a security section") }
            loaded.security?.keys[role] = key
        }
        return loaded
    }
}

/// Logging verbosity, shared by every command.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func bootstrap(label: String) -> Logger {
        let level = logLevel
        LoggingSystem.bootstrap { name in
            var handler = StreamLogHandler.standardError(label: name)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A duration flag (`--deadline 500ms`), read and printed with the topology files' syntax
/// (`DurationSyntax`): `500ms`, `1.5s`, `2m`, `0s`.
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible {
    let duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        guard let duration = try? DurationSyntax.parse(argument) else { return nil }
        self.duration = duration
    }

    /// The text flags and help show, such as `10s`.
    var description: String { DurationSyntax.format(duration) }
    var defaultValueDescription: String { description }
}

enum TaskMeshVersion {
    static let current = "0.1.0"
}

func writeError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Prints the line scripts and tests wait for: `ready key=value ...`, flushed at once.
func announceReady(_ details: String) {
    FileHandle.standardOutput.write(Data("ready \(details)\n".utf8))
}

/// Calls `reload` on every SIGHUP (allowlist reload) until the returned source is cancelled.
func onHangup(logger: Logger, _ reload: @escaping @Sendable () throws -> Void) -> any DispatchSourceSignal {
    signal(SIGHUP, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    source.setEventHandler {
        do {
            try reload()
        } catch {
            logger.error("allowlist reload failed; the previous lists stay in force: \(error)")
        }
    }
    source.resume()
    return source
}

/// Calls `body` on the first SIGINT (Ctrl-C) until the returned source is cancelled; a second
/// SIGINT ends the process at once, as usual.
func onInterrupt(_ body: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    let fired = RaisedOnce()
    source.setEventHandler {
        if fired.raise() { exit(130) }
        body()
    }
    source.resume()
    return source
}

/// A flag raised once, from any thread.
final class RaisedOnce: Sendable {
    private let raised = Atomic<Bool>(false)
    /// Raises it; returns whether it was raised already.
    @discardableResult
    func raise() -> Bool { raised.exchange(true, ordering: .acquiringAndReleasing) }
    var isRaised: Bool { raised.load(ordering: .acquiring) }
}
