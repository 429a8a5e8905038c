import Foundation

/// The handlers a worker runs, by name: the "plugins" a job names.
///
/// A handler may validate a job before running it; a validation failure reaches the client as
/// `JobError.rejected` with its message, a thrown error from the handler as
/// `JobError.handlerFailed`. Handlers run concurrently (up to the worker's concurrency), so
/// they must be safe to run side by side; they should be `async` and never block a thread.
/// A handler body runs on its caller's executor (it is `nonisolated(nonsending)`): one of the
/// worker's runner tasks, or, for a handler measured to take microseconds, the worker's loop
/// thread until it first suspends. Calls into an actor from a body hop to it as usual.
public struct Handlers: Sendable {
    typealias Run = nonisolated(nonsending) @Sendable (Job) async -> HandlerOutcome

    /// A registered handler. A class around the closure, so that the dictionary stores a
    /// reference: a closure stored as a dictionary value is kept at the dictionary's
    /// abstraction, and every call through it would copy the `Job` in a thunk.
    final class Registered: Sendable {
        let run: Run
        init(_ run: @escaping Run) { self.run = run }
    }

    private(set) var table: [String: Registered] = [:]

    public init() {}

    /// The registered handler names.
    public var names: [String] { table.keys.sorted() }

    /// Registers a handler over raw bytes; `job.context` tells it about the job (`JobContext`).
    /// Registering a name again replaces the handler.
    ///
    /// - Parameters:
    ///   - retry: when a failed job runs again, unless the job sets its own
    ///     (`JobOptions.retry`). Default: never.
    ///   - validate: runs first; throwing rejects the job (`JobError.rejected`, never retried).
    ///   - body: returns the result bytes; throwing fails the job (`JobError.handlerFailed`,
    ///     with the error's type name and description) or, within `retry`, runs it again.
    /// - Throws: `HandlerNameError` for a name that is empty or longer than 255 UTF-8 bytes.
    public mutating func register(
        _ name: String,
        retry: RetryPolicy = .none,
        validate: (@Sendable (Job) throws -> Void)? = nil,
        _ body: nonisolated(nonsending) @escaping @Sendable (Job) async throws -> [UInt8]
    ) throws(HandlerNameError) {
        try HandlerNameError.check(name)
        table[name] = Registered { job in
            if let validate {
                do { try validate(job) } catch { return HandlerOutcome(.rejected, Array(Self.describe(error).utf8)) }
            }
            do {
                return HandlerOutcome(.ok, try await body(job))
            } catch {
                return Self.failure(error, job: job, policy: retry)
            }
        }
    }

    /// Registers a typed handler: the payload is decoded from JSON as `Input`, and the handler's
    /// `Output` is encoded as JSON. A payload that does not decode is rejected
    /// (`JobError.rejected`) without running the handler. `retry` and the errors are as for the
    /// raw `register`.
    public mutating func register<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        as input: Input.Type = Input.self,
        retry: RetryPolicy = .none,
        validate: (@Sendable (Input) throws -> Void)? = nil,
        _ body: nonisolated(nonsending) @escaping @Sendable (Input) async throws -> Output
    ) throws(HandlerNameError) {
        try register(name, as: input, retry: retry, validate: validate) { (value: Input, _: JobContext) in try await body(value) }
    }

    /// Registers a typed handler that also gets the job's `JobContext` (its id, attempt,
    /// deadline, logger and progress reporter).
    public mutating func register<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        as input: Input.Type = Input.self,
        retry: RetryPolicy = .none,
        validate: (@Sendable (Input) throws -> Void)? = nil,
        _ body: nonisolated(nonsending) @escaping @Sendable (Input, JobContext) async throws -> Output
    ) throws(HandlerNameError) {
        try HandlerNameError.check(name)
        table[name] = Registered { job in
            let value: Input
            do {
                value = try JSONDecoder().decode(Input.self, from: Data(job.payload))
            } catch {
                return HandlerOutcome(.rejected, Array("payload is not a valid \(Input.self): \(Self.describe(error))".utf8))
            }
            if let validate {
                do { try validate(value) } catch { return HandlerOutcome(.rejected, Array(Self.describe(error).utf8)) }
            }
            do {
                return HandlerOutcome(.ok, Array(try JSONEncoder().encode(try await body(value, job.context))))
            } catch {
                return Self.failure(error, job: job, policy: retry)
            }
        }
    }

    /// The outcome of a handler that threw: `retry` with its delay when the job's policy (its
    /// own, else the handler's) runs it again, else `failed` with `Type: message`.
    private static func failure(_ error: any Error, job: Job, policy: RetryPolicy) -> HandlerOutcome {
        let message = Array(describeFailure(error).utf8)
        let effective = job.retryOverride?.policy ?? policy
        if let delay = effective.retry(after: job.attempt, error: error) {
            return HandlerOutcome(.retry, RetryAnswer(delay: delay, message: message).encode())
        }
        return HandlerOutcome(.failed, message)
    }

    /// `Type: description` for an error a handler threw (docs/PROTOCOL.md, "RESULT").
    static func describeFailure(_ error: any Error) -> String {
        "\(type(of: error)): \(describe(error))"
    }

    /// Removes the handler `name`, if registered.
    public mutating func remove(_ name: String) {
        table.removeValue(forKey: name)
    }

    /// Whether a handler of that name is registered.
    public func contains(_ name: String) -> Bool { table[name] != nil }

    static func describe(_ error: any Error) -> String {
        if let validation = error as? JobRejection { return validation.message }
        if let decoding = error as? DecodingError { return describe(decoding) }
        return String(describing: error)
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing field \"\(key.stringValue)\""
        case .typeMismatch(let type, let context): "\(context.codingPath.map(\.stringValue).joined(separator: ".")): expected \(type)"
        case .valueNotFound(let type, let context): "\(context.codingPath.map(\.stringValue).joined(separator: ".")): missing \(type)"
        case .dataCorrupted(let context): context.debugDescription
        @unknown default: String(describing: error)
        }
    }
}

/// What a handler run produced: the RESULT status and body.
///
/// A struct rather than a `(ResultStatus, [UInt8])` tuple: Swift 6.3.1 in release builds returned
/// a garbage enum from an async closure whose result was such a tuple (docs/ARCHITECTURE.md,
/// "Build"). The release smoke test in scripts/test.sh guards against its return.
/// Why a handler name cannot be registered: empty, or longer than 255 UTF-8 bytes.
public struct HandlerNameError: Error, Hashable, Sendable, CustomStringConvertible {
    public let name: String

    static func check(_ name: String) throws(HandlerNameError) {
        guard !name.isEmpty && name.utf8.count <= Wire.maxHandlerLength else { throw HandlerNameError(name: name) }
    }

    public var description: String {
        name.isEmpty ? "a handler name must not be empty"
                     : "the handler name \"\(name.prefix(40))…\" is \(name.utf8.count) UTF-8 bytes; at most \(Wire.maxHandlerLength) are allowed"
    }
}

struct HandlerOutcome: Sendable {
    var status: ResultStatus
    var body: [UInt8]

    init(_ status: ResultStatus, _ body: [UInt8]) {
        self.status = status
        self.body = body
    }
}
