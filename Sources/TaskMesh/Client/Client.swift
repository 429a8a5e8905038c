import Foundation
public import Logging
import ZMQ

/// Submits jobs to a mesh and receives each one's outcome as a future.
///
/// **Outcomes.** Every accepted job ends exactly once at this client: with its result, or with a
/// `JobError` (unknown handler, rejected, handler failed, timed out, payload too large, no
/// workers, mesh closed, cancelled, ...). A result that arrives after its job ended, or twice, is
/// dropped and counted in `stats`, never surfaced.
///
/// **Delivery.** In direct and local mode a job runs at most once: a job queued at a worker that
/// dies is lost and ends as `timedOut` at its deadline. A timeout is an unknown outcome: the job
/// may have run.
///
/// **Threading.** All methods are safe to call from any task or thread. Socket work happens on
/// the client's own thread; awaiting a result never blocks a thread.
public final class Client: Sendable {
    /// This client's id, under which the sink routes its results.
    public let id: String
    let core: ClientCore
    private let topology: Topology

    /// Connects a client to the mesh `topology` describes and returns once its loop runs.
    /// `context` must be the mesh's own in local mode (`Mesh.client()` passes it).
    public static func connect(topology: Topology, context: MeshContext? = nil,
                               logger: Logger = Logger(label: "taskmesh.client")) async throws -> Client {
        try checkPlaintext(topology, endpoints: [topology.hub.clientsEndpoint], logger: logger)
        let security = try RoleSecurity.load(topology, role: .client)
        // In a secure mesh a client's id is its public key (which the handshake proves) and 8
        // random bytes, so processes sharing a key stay apart.
        let client = try Client(topology: topology, clientID: security.map { $0.publicKey + (0..<8).map { _ in UInt8.random(in: 0...255) } })
        let core = client.core
        let sockets = SocketFactory(context: try context?.zmq ?? Context(), topology: topology, security: security)
        switch topology.hub {
        case .broker(let broker):
            try await run(BrokerTransport.self, hub: broker, core: core, topology: topology, sockets: sockets, logger: logger)
        case .sink(let sink), .local(let sink):
            try await run(DirectTransport.self, hub: sink, core: core, topology: topology, sockets: sockets, logger: logger)
        }
        return client
    }

    /// Starts the client's loop thread over a `Transport` and returns once it runs.
    private static func run<Transport: ClientTransport>(_ transport: Transport.Type, hub: Transport.Hub, core: ClientCore,
                                                        topology: Topology, sockets: SocketFactory, logger: Logger) async throws {
        try await core.thread.launch(name: "taskmesh-client") {
            let transport = try Transport(core: core, topology: topology, hub: hub, sockets: sockets, logger: logger)
            return ClientLoop(core: core, topology: topology, transport: transport, logger: logger).run
        }
    }

    private init(topology: Topology, clientID: [UInt8]?) throws {
        var random = SystemRandomNumberGenerator()
        let clientID = clientID ?? (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        self.core = try ClientCore(clientID: clientID, spinWait: ClientCore.spinWait(
            configured: topology.client.spinWait, processors: ProcessInfo.processInfo.activeProcessorCount))
        self.id = JobID(bytes: clientID).description
        self.topology = topology
    }

    deinit { core.thread.requestStop() }

    /// Counters since start.
    public var stats: ClientStats { core.stats.value }

    // MARK: Submitting bytes

    /// Submits a job and returns its handle at once; the job is sent as soon as a worker can
    /// take it.
    ///
    /// - Throws: `payloadTooLarge` over `limits.max_payload`, `invalidJob` for an empty or too
    ///   long handler name or id, `overloaded` past `client.max_pending`, `meshClosed` after
    ///   `close()`. A job that throws here was not submitted.
    public func enqueue(_ handler: String, _ payload: [UInt8], options: JobOptions = JobOptions()) throws(JobError) -> JobHandle<[UInt8]> {
        try enqueue(handler, payload, options: options) { (bytes) throws(JobError) in bytes }
    }

    /// Submits a job and waits for its outcome.
    ///
    /// Cancelling the awaiting task cancels the job (`JobError.cancelled`).
    public func submit(_ handler: String, _ payload: [UInt8], options: JobOptions = JobOptions()) async throws(JobError) -> [UInt8] {
        let handle = try enqueue(handler, payload, options: options)
        return try await Self.await(handle)
    }

    // MARK: Submitting Codable values

    /// Submits a job whose payload is `input` encoded as JSON, and returns a handle whose value
    /// is the result decoded from JSON as `Output`. A result that does not decode ends as
    /// `decodingFailed`.
    public func enqueue<Input: Encodable, Output: Decodable & Sendable>(
        _ handler: String, _ input: Input, as output: Output.Type = Output.self, options: JobOptions = JobOptions()
    ) throws(JobError) -> JobHandle<Output> {
        let payload: [UInt8]
        do {
            payload = Array(try JSONEncoder().encode(input))
        } catch {
            throw JobError(.invalidJob, "cannot encode \(Input.self) as JSON: \(error)")
        }
        return try enqueue(handler, payload, options: options) { (bytes) throws(JobError) in
            do {
                return try JSONDecoder().decode(Output.self, from: Data(bytes))
            } catch {
                throw JobError(.decodingFailed, "result is not a valid \(Output.self): \(error)")
            }
        }
    }

    /// Submits a Codable job and waits for its decoded result.
    public func submit<Input: Encodable, Output: Decodable & Sendable>(
        _ handler: String, _ input: Input, as output: Output.Type = Output.self, options: JobOptions = JobOptions()
    ) async throws(JobError) -> Output {
        let handle: JobHandle<Output> = try enqueue(handler, input, as: output, options: options)
        return try await Self.await(handle)
    }

    // MARK: Batches

    /// Submits one job per payload, keeping at most `window` in flight, and yields each outcome
    /// as it completes (not in submission order; `BatchOutcome.index` says which). The stream
    /// ends after the last outcome. Jobs that cannot be submitted yield their error as outcome.
    /// Cancelling the consuming task cancels the jobs still pending. `onProgress`, when given,
    /// is called with a job's index and each progress update its handler reports
    /// (`JobHandle.progress`), on the client's loop thread: keep it short.
    public func batch(_ handler: String, _ payloads: [[UInt8]], window: Int = 1024, options: JobOptions = JobOptions(),
                      onProgress: (@Sendable (Int, JobProgress) -> Void)? = nil) -> AsyncStream<BatchOutcome> {
        let (output, outputContinuation) = AsyncStream<BatchOutcome>.makeStream()
        let (done, doneContinuation) = AsyncStream<BatchOutcome>.makeStream()
        let window = max(1, window)
        let feeder = Task {
            var next = 0
            var inFlight = 0
            var handles: [Int: JobHandle<[UInt8]>] = [:]
            func launch() {
                while inFlight < window && next < payloads.count {
                    let index = next
                    next += 1
                    do {
                        let handle = try enqueue(handler, payloads[index], options: options)
                        handles[index] = handle
                        inFlight += 1
                        if let onProgress { handle.promise.progress.onUpdate { onProgress(index, $0) } }
                        handle.promise.onComplete { doneContinuation.yield(BatchOutcome(index: index, result: $0)) }
                    } catch {
                        outputContinuation.yield(BatchOutcome(index: index, result: .failure(error)))
                    }
                }
            }
            launch()
            if inFlight > 0 {
                for await outcome in done {
                    handles.removeValue(forKey: outcome.index)
                    inFlight -= 1
                    outputContinuation.yield(outcome)
                    if Task.isCancelled { break }
                    launch()
                    if inFlight == 0 { break }
                }
            }
            for handle in handles.values { handle.cancel() }
            outputContinuation.finish()
        }
        outputContinuation.onTermination = { _ in feeder.cancel() }
        return output
    }

    // MARK: Lifecycle

    /// Waits until the sink has told this client of at least `count` live workers (with
    /// `handling`, workers that have that handler and every label in `requiring`), so that the
    /// first jobs spread over all of them. Throws `noWorkers` when `timeout` passes first.
    /// In reliable mode the broker reports only how many workers are ready, so `handling` and
    /// `requiring` are not checked there (the broker holds a job until a capable worker joins).
    public func waitForWorkers(_ count: Int = 1, handling handler: String? = nil, requiring labels: Set<String> = [],
                               timeout: Duration) async throws(JobError) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let filtered = handler != nil && topology.mode != .reliable
        func known() -> Int {
            guard filtered, let handler else { return stats.workers }
            return core.workerCapabilities.value.filter { $0.canRun(handler, requiring: labels.sorted()) }.count
        }
        while known() < count {
            guard clock.now < deadline else {
                let what = filtered ? "workers with handler \"\(handler!)\"" : "workers"
                throw JobError(.noWorkers, "\(known()) of \(count) \(what) known after \(timeout)")
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Closes the client: pending jobs end with `meshClosed`, later submits fail with it.
    /// Waits until the client's sockets are closed.
    public func close() async {
        core.closed.store(true, ordering: .releasing)
        core.thread.requestStop()
        await core.thread.waitUntilExited()
    }

    // MARK: Internals

    private func enqueue<Output>(_ handler: String, _ payload: [UInt8], options: JobOptions,
                                 decode: @escaping @Sendable ([UInt8]) throws(JobError) -> Output) throws(JobError) -> JobHandle<Output> {
        guard !core.closed.load(ordering: .acquiring) else { throw JobError(.meshClosed, "the client is closed") }
        guard !handler.isEmpty, handler.utf8.count <= Wire.maxHandlerLength else {
            throw JobError(.invalidJob, "a handler name is 1 to \(Wire.maxHandlerLength) UTF-8 bytes")
        }
        guard payload.count <= topology.limits.maxPayload else {
            throw JobError(.payloadTooLarge, "payload of \(payload.count) bytes exceeds limits.max_payload (\(topology.limits.maxPayload) bytes)")
        }
        let jobID = options.id?.bytes ?? core.nextJobID()
        guard !jobID.isEmpty, jobID.count <= Wire.maxIDLength else {
            throw JobError(.invalidJob, "a job id is 1 to \(Wire.maxIDLength) bytes")
        }
        guard options.requires.count <= Capabilities.maxLabels else {
            throw JobError(.invalidJob, "a job requires at most \(Capabilities.maxLabels) labels, got \(options.requires.count)")
        }
        for label in options.requires {
            if let problem = LabelRules.problem(with: label) { throw JobError(.invalidJob, problem) }
        }
        if core.pendingCount.add(1, ordering: .relaxed).newValue > topology.client.maxPending {
            core.pendingCount.subtract(1, ordering: .relaxed)
            throw JobError(.overloaded, "\(topology.client.maxPending) jobs are already pending (client.max_pending)")
        }
        let timeout = options.deadline ?? topology.client.deadline
        let promise = Promise()
        core.submit(Submission(
            jobID: jobID, handler: handler, payload: payload,
            deadline: .current + timeout,
            wallDeadline: wallClockMilliseconds() + UInt64(max(0, timeout.milliseconds)),
            promise: promise,
            options: options.requires.isEmpty && options.priority == .default
                ? .standard : DispatchOptions(priority: options.priority.value, requires: Array(options.requires)),
            retry: options.retry.map(RetryOverride.init)
        ))
        return JobHandle(id: JobID(bytes: jobID), promise: promise, core: core, decode: decode)
    }

    private static func await<Output>(_ handle: JobHandle<Output>) async throws(JobError) -> Output {
        let outcome: Result<Output, JobError> = await withTaskCancellationHandler {
            do throws(JobError) {
                return .success(try await handle.value())
            } catch {
                return .failure(error)
            }
        } onCancel: {
            handle.cancel()
        }
        return try outcome.get()
    }
}
