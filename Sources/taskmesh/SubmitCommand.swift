import ArgumentParser
import Crypto
import Foundation
import TaskMesh

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit one job and print its result, or many and print a summary.",
        discussion: """
        With --count, submits N jobs (each payload random bytes of --size, unless a PAYLOAD is given), \
        keeps --window in flight, shows progress on a terminal, and prints: ok, failed, timed out, \
        jobs per second, p50 and p99 latency. --verify checks every sha256 or echo result against \
        the payload. Exits non-zero when any job did not succeed.
        """)

    @OptionGroup var topologyOptions: TopologyOptions
    @OptionGroup var logOptions: LogOptions

    @Argument(help: "The handler to run, e.g. echo, sha256, sleep, fail.")
    var handler: String

    @Argument(help: "The payload, as text. Default: empty (one job) or random bytes (with --count).")
    var payload: String?

    @Option(help: ArgumentHelp("The sink's clients endpoint, overriding sink.clients.endpoint (direct mode).", valueName: "endpoint"))
    var sink: String?

    @Option(help: ArgumentHelp("The broker's clients endpoint, overriding broker.clients.endpoint (reliable mode).", valueName: "endpoint"))
    var broker: String?

    @Option(help: "How many jobs to submit.")
    var count: Int = 1

    @Option(help: "Size in bytes of each random payload (with --count and no PAYLOAD).")
    var size: Int = 16

    @Option(help: "Jobs in flight at once.")
    var window: Int = 1000

    @Option(help: "Deadline per job, e.g. 500ms or 30s. Default: the topology's client.deadline.")
    var deadline: DurationArgument?

    @Option(help: "Wait until this many workers are known before submitting (at most --wait).")
    var workers: Int = 1

    @Option(help: "How long to wait for --workers, e.g. 10s.")
    var wait: DurationArgument = DurationArgument(argument: "10s")!

    @Option(name: .customLong("require"), help: ArgumentHelp(
        "A label a worker must carry to run these jobs (repeatable), e.g. gpu.", valueName: "label"))
    var requires: [String] = []

    @Option(help: ArgumentHelp("Priority from 1 (lowest) to 9 (highest); default 5.", valueName: "1-9"))
    var priority: Int = Int(JobPriority.default.value)

    @Flag(help: "Check each sha256 or echo result against its payload.")
    var verify = false

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @Flag(inversion: .prefixedNo, help: "Show a progress bar (default: when standard error is a terminal).")
    var progress: Bool?

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1") }
        if size < 0 { throw ValidationError("--size must not be negative") }
        if window < 1 { throw ValidationError("--window must be at least 1") }
        if JobPriority(priority) == nil { throw ValidationError("--priority must be from 1 to 9, got \(priority)") }
        for label in requires {
            if let problem = LabelRules.problem(with: label) { throw ValidationError("--require: \(problem)") }
        }
    }

    func run() async throws {
        _ = logOptions.bootstrap(label: "taskmesh.submit")
        var topology = try topologyOptions.load(role: .client)
        guard topology.mode != .local else {
            throw ValidationError("submit connects to a running mesh (-t topologies/direct.yaml or reliable.yaml); local mode has no workers to reach, try `taskmesh demo`")
        }
        if let sink { topology.sink.clientsEndpoint = sink }
        if let broker { topology.broker.clientsEndpoint = broker }
        let mesh = try await Mesh.start(topology: topology)
        let client = try await mesh.client()
        defer { Task { await mesh.shutdown() } }
        do {
            try await client.waitForWorkers(workers, timeout: wait.duration)
        } catch {
            writeError("error: \(error)")
            throw ExitCode.failure
        }
        let options = JobOptions(deadline: deadline?.duration, requires: Set(requires), priority: JobPriority(priority) ?? .default)

        if count == 1 && !verify && !json {
            do {
                let result = try await client.submit(handler, Array((payload ?? "").utf8), options: options)
                FileHandle.standardOutput.write(Data(result))
                if !result.isEmpty && result.last != 0x0A { print() }
            } catch {
                writeError("error: \(error.code): \(error.message)")
                throw ExitCode.failure
            }
            await mesh.shutdown()
            return
        }

        let payloads = makePayloads()
        let summary = await runMany(client: client, payloads: payloads, options: options)
        await mesh.shutdown()
        print(json ? summary.json : summary.text)
        if !summary.allSucceeded { throw ExitCode.failure }
    }

    private func makePayloads() -> [[UInt8]] {
        if let payload { return Array(repeating: Array(payload.utf8), count: count) }
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) } }
    }

    private func runMany(client: Client, payloads: [[UInt8]], options: JobOptions) async -> Summary {
        let clock = ContinuousClock()
        let showProgress = progress ?? (isatty(STDERR_FILENO) == 1)
        var summary = Summary(count: payloads.count)
        var bar = ProgressBar(total: payloads.count, enabled: showProgress)
        let start = clock.now
        var started = [ContinuousClock.Instant](repeating: start, count: payloads.count)
        // Latency counts from when a job enters the window: batches launch in index order.
        var launched = 0
        func markLaunches(upTo limit: Int) {
            let now = clock.now
            while launched < min(limit, payloads.count) {
                started[launched] = now
                launched += 1
            }
        }
        markLaunches(upTo: window)
        for await outcome in client.batch(handler, payloads, window: window, options: options) {
            summary.latencies.append(clock.now - started[outcome.index])
            switch outcome.result {
            case .success(let result):
                if verify && !check(result, payloads[outcome.index]) { summary.wrong += 1 } else { summary.ok += 1 }
            case .failure(let error):
                summary.record(error)
            }
            markLaunches(upTo: summary.done + window)
            bar.update(summary.done)
        }
        bar.finish()
        summary.elapsed = clock.now - start
        summary.droppedLateOrDuplicate = client.stats.droppedLateOrDuplicate
        return summary
    }

    private func check(_ result: [UInt8], _ payload: [UInt8]) -> Bool {
        switch handler {
        case "sha256": return result == Array(BuiltinHandlers.hex(SHA256.hash(data: payload)).utf8)
        case "echo", "sleep": return result == payload
        default: return true
        }
    }
}
