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
        the payload. Exits non-zero when any job did not succeed. --retries runs a failed job again \
        (with exponential backoff from --backoff); --events prints each progress update a handler \
        reports (JSON lines with --json). Ctrl-C cancels the pending jobs, on their workers too, and \
        exits with status 130.
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

    @Option(help: ArgumentHelp("Run a failed job again up to N more times (0 to 99).", valueName: "N"))
    var retries: Int = 0

    @Option(help: "The wait before the first retry, doubling for each further one (up to 30s), e.g. 50ms.")
    var backoff: DurationArgument = DurationArgument(argument: "100ms")!

    @Flag(help: "Print the progress updates the handlers report, one line each.")
    var events = false

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
        if !(0...99).contains(retries) { throw ValidationError("--retries must be from 0 to 99, got \(retries)") }
        if backoff.duration > .seconds(30) { throw ValidationError("--backoff must be at most 30s") }
        if let deadline, deadline.duration <= .zero { throw ValidationError("--deadline must be more than 0s") }
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
        try topology.point(sink: sink, broker: broker, sinkEndpoint: \.clientsEndpoint, brokerEndpoint: \.clientsEndpoint)
        let mesh = try await Mesh.start(topology: topology)
        do {
            try await submit(on: mesh)
        } catch {
            await mesh.shutdown()  // before exiting: a cancellation's CANCEL, the last messages, leave
            throw error
        }
        await mesh.shutdown()
    }

    /// Waits for the workers, then runs one job or many on a client of `mesh`.
    private func submit(on mesh: Mesh) async throws {
        let client = try await mesh.client()
        do {
            try await client.waitForWorkers(workers, timeout: wait.duration)
        } catch {
            let type = error.errorType.map { " (\($0))" } ?? ""
            let attempts = error.attempts > 1 ? " [after \(error.attempts) attempts]" : ""
            writeError("error: \(error.code): \(error.message)\(type)\(attempts)")
            throw ExitCode.failure
        }
        let retry = retries == 0 ? nil : try RetryPolicy(maxAttempts: retries + 1, base: backoff.duration, cap: max(backoff.duration, .seconds(30)))
        let options = JobOptions(deadline: deadline?.duration, requires: Set(requires), priority: JobPriority(priority) ?? .default,
                                 retry: retry)

        if count == 1 && !verify && !json {
            try await runOne(client: client, options: options)
            return
        }

        let payloads = makePayloads()
        let interrupted = RaisedOnce()
        let run = Task { await runMany(client: client, payloads: payloads, options: options) }
        let interrupt = onInterrupt {
            interrupted.raise()
            run.cancel()  // the batch cancels its pending jobs
        }
        let summary = await run.value
        interrupt.cancel()
        print(json ? summary.json : summary.text)
        if interrupted.isRaised {
            writeError("interrupted: the pending jobs were cancelled")
            throw ExitCode(130)
        }
        if !summary.allSucceeded { throw ExitCode.failure }
    }

    /// One job: its result on standard output, its progress lines first with --events.
    private func runOne(client: Client, options: JobOptions) async throws {
        let handle: JobHandle<[UInt8]>
        do {
            handle = try client.enqueue(handler, Array((payload ?? "").utf8), options: options)
        } catch {
            writeError("error: \(error.code): \(error.message)")
            throw ExitCode.failure
        }
        let interrupted = RaisedOnce()
        let interrupt = onInterrupt {
            interrupted.raise()
            handle.cancel()
        }
        defer { interrupt.cancel() }
        if events {
            for await update in handle.progress { Self.printEvent(update, index: nil, json: json) }
        }
        do {
            let result = try await handle.value()
            FileHandle.standardOutput.write(Data(result))
            if !result.isEmpty && result.last != 0x0A { print() }
        } catch {
            if interrupted.isRaised {
                writeError("interrupted: the job was cancelled")
                throw ExitCode(130)
            }
            let type = error.errorType.map { " (\($0))" } ?? ""
            let attempts = error.attempts > 1 ? " [after \(error.attempts) attempts]" : ""
            writeError("error: \(error.code): \(error.message)\(type)\(attempts)")
            throw ExitCode.failure
        }
    }

    /// A progress line: `progress 3/10` (`progress job=4 3/10` in a batch), or one JSON object.
    private static func printEvent(_ update: JobProgress, index: Int?, json: Bool) {
        let line: String
        if json {
            var object: [String: Any] = ["event": "progress", "completed": update.completed, "total": update.total, "attempt": update.attempt]
            if let index { object["index"] = index }
            if !update.detail.isEmpty { object["detail"] = String(decoding: update.detail, as: UTF8.self) }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            line = String(decoding: data, as: UTF8.self)
        } else {
            line = "progress " + (index.map { "job=\($0) " } ?? "") + "\(update.completed)/\(update.total)"
        }
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
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
        let json = self.json
        var onProgress: (@Sendable (Int, JobProgress) -> Void)?
        if events {
            onProgress = { @Sendable (index: Int, update: JobProgress) -> Void in Self.printEvent(update, index: index, json: json) }
        }
        for await outcome in client.batch(handler, payloads, window: window, options: options, onProgress: onProgress) {
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
        summary.cancelled = payloads.count - summary.done
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
