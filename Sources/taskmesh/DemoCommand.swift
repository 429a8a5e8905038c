import ArgumentParser
import Foundation
import Logging
import TaskMesh

/// The input and output of the demo's `add` handler.
struct AddRequest: Codable, Sendable {
    let x: Int
    let y: Int
}

struct AddResult: Codable, Sendable {
    let sum: Int
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a whole mesh in this process and put jobs through it.",
        discussion: """
        In local mode (the default) everything runs over inproc. With a direct or reliable topology \
        the demo starts the sink or broker and the workers in this process on the topology's tcp \
        endpoints and submits over the network stack.
        """)

    @OptionGroup var topologyOptions: TopologyOptions
    @OptionGroup var logOptions: LogOptions

    @Option(help: "How many sha256 jobs the throughput part runs.")
    var jobs: Int = 20_000

    @Option(help: "How many workers to start.")
    var workers: Int = 2

    func validate() throws {
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
    }

    func run() async throws {
        var logOptions = self.logOptions
        if logOptions.logLevel == .info { logOptions.logLevel = .warning }
        let logger = logOptions.bootstrap(label: "taskmesh.demo")
        let topology = try topologyOptions.load()
        print("TaskMesh demo: \(topology.mode.rawValue) mode, \(workers) workers")

        let mesh = try await Mesh.start(topology: topology, logger: logger)
        // The stable endpoint of direct and reliable mode runs in this process too.
        var stopStandalone: (@Sendable () async -> Void)?
        if topology.mode == .direct {
            let sink = try Sink(topology: topology, logger: logger)
            try await sink.start()
            stopStandalone = { await sink.stop() }
        } else if topology.mode == .reliable {
            let broker = try Broker(topology: topology, logger: logger)
            try await broker.start()
            stopStandalone = { await broker.stop() }
        }
        var handlers = BuiltinHandlers.make()
        try handlers.register("add", as: AddRequest.self, validate: { request in
            if abs(request.x) > 1_000_000_000 || abs(request.y) > 1_000_000_000 {
                throw JobRejection("x and y must be within ±1e9")
            }
        }) { request in
            AddResult(sum: request.x + request.y)
        }
        for _ in 0..<workers { try await mesh.worker(handlers) }
        let client = try await mesh.client()
        try await client.waitForWorkers(workers, timeout: .seconds(10))

        let sum: AddResult = try await client.submit("add", AddRequest(x: 1, y: 2))
        print("add(x: 1, y: 2) = \(sum.sum)")
        let digest = try await client.submit("sha256", Array("hello".utf8))
        print("sha256(\"hello\") = \(String(decoding: digest, as: UTF8.self))")
        do {
            _ = try await client.submit("nosuch", [])
        } catch {
            print("nosuch -> \(error.code): \(error.message)")
        }
        do {
            let _: AddResult = try await client.submit("add", AddRequest(x: 2_000_000_000, y: 1))
        } catch {
            print("add(x: 2e9, y: 1) -> \(error.code): \(error.message)")
        }

        let payloads = (0..<jobs).map { Array("payload-\($0)".utf8) }
        let clock = ContinuousClock()
        let start = clock.now
        var ok = 0
        for await outcome in client.batch("sha256", payloads, window: 1000) {
            if case .success = outcome.result { ok += 1 }
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "%d sha256 jobs: %d ok in %.2f s (%.0f jobs/s)", jobs, ok, seconds, Double(jobs) / seconds))

        await mesh.shutdown()
        await stopStandalone?()
        if ok != jobs { throw ExitCode.failure }
    }
}
