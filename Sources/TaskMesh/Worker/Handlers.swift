import Foundation

/// The handlers a worker runs, by name: the "plugins" a job names.
///
/// A handler may validate a job before running it; a validation failure reaches the client as
/// `JobError.rejected` with its message, a thrown error from the handler as
/// `JobError.handlerFailed`. Handlers run concurrently (up to the worker's concurrency), so
/// they must be safe to run side by side; they should be `async` and never block a thread.
public struct Handlers: Sendable {
    typealias Run = @Sendable (Job) async -> HandlerOutcome

    private(set) var table: [String: Run] = [:]

    public init() {}

    /// The registered handler names.
    public var names: [String] { table.keys.sorted() }

    /// Registers a handler over raw bytes. Registering a name again replaces the handler.
    ///
    /// - Parameters:
    ///   - validate: runs first; throwing rejects the job (`JobError.rejected`).
    ///   - body: returns the result bytes; throwing fails the job (`JobError.handlerFailed`).
    public mutating func register(
        _ name: String,
        validate: (@Sendable (Job) throws -> Void)? = nil,
        _ body: @escaping @Sendable (Job) async throws -> [UInt8]
    ) {
        precondition(!name.isEmpty && name.utf8.count <= Wire.maxHandlerLength, "a handler name is 1 to 255 UTF-8 bytes")
        table[name] = { job in
            if let validate {
                do { try validate(job) } catch { return HandlerOutcome(.rejected, Array(Self.describe(error).utf8)) }
            }
            do {
                return HandlerOutcome(.ok, try await body(job))
            } catch {
                return HandlerOutcome(.failed, Array(Self.describe(error).utf8))
            }
        }
    }

    /// Registers a typed handler: the payload is decoded from JSON as `Input`, and the handler's
    /// `Output` is encoded as JSON. A payload that does not decode is rejected
    /// (`JobError.rejected`) without running the handler.
    public mutating func register<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        as input: Input.Type = Input.self,
        validate: (@Sendable (Input) throws -> Void)? = nil,
        _ body: @escaping @Sendable (Input) async throws -> Output
    ) {
        precondition(!name.isEmpty && name.utf8.count <= Wire.maxHandlerLength, "a handler name is 1 to 255 UTF-8 bytes")
        table[name] = { job in
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
                return HandlerOutcome(.ok, Array(try JSONEncoder().encode(try await body(value))))
            } catch {
                return HandlerOutcome(.failed, Array(Self.describe(error).utf8))
            }
        }
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
struct HandlerOutcome: Sendable {
    var status: ResultStatus
    var body: [UInt8]

    init(_ status: ResultStatus, _ body: [UInt8]) {
        self.status = status
        self.body = body
    }
}
