import Crypto
import TaskMesh

/// The handlers `taskmesh worker` and `taskmesh demo` run.
enum BuiltinHandlers {
    static let names = ["echo", "sleep", "sha256", "fail", "flaky"]
    static let faultNames = ["crash", "hang"]

    /// Their contracts are in docs/PROTOCOL.md, "Built-in handlers".
    static func make() -> Handlers {
        var handlers = Handlers()
        do {
            // Returns its input unchanged.
            try handlers.register("echo") { $0.payload }
            // Waits for the number of milliseconds the payload spells (0 to 3,600,000), reporting
            // progress in milliseconds as it goes, then echoes it. Cancellation ends it at once.
            try handlers.register("sleep", validate: { job in
                guard milliseconds(job.payload) != nil else {
                    throw JobRejection("the payload must be a number of milliseconds from 0 to 3600000")
                }
            }) { job in
                let total = milliseconds(job.payload)!
                let clock = ContinuousClock()
                let end = clock.now + .milliseconds(total)
                let step = Duration.milliseconds(max(10, min(250, total / 20)))
                job.context.progress(0, of: total)
                while clock.now < end {
                    try await Task.sleep(until: min(end, clock.now + step), clock: clock)
                    let left = clock.now.duration(to: end)
                    job.context.progress(total - max(0, Int(left / .milliseconds(1))), of: total)
                }
                job.context.progress(total, of: total)
                return job.payload
            }
            // Returns the lowercase hex SHA-256 digest of the payload.
            try handlers.register("sha256") { job in Array(hex(SHA256.hash(data: job.payload)).utf8) }
            // Always fails, with the payload as its message.
            try handlers.register("fail") { job in
                throw FailureOnRequest(message: job.payload.isEmpty ? "failed on request" : String(decoding: job.payload, as: UTF8.self))
            }
            // Fails (retryably) its first N attempts, N being the payload (0 to 100), then
            // returns "ok after N failures".
            try handlers.register("flaky", validate: { job in
                guard failures(job.payload) != nil else { throw JobRejection("the payload must be a number of failures from 0 to 100") }
            }) { job in
                let n = failures(job.payload)!
                guard job.attempt > n else { throw HandlerFailure.retryable("attempt \(job.attempt) of \(n) meant to fail") }
                return Array("ok after \(n) failures".utf8)
            }
        } catch {
            fatalError("a built-in handler name is invalid: \(error)")  // the names above are constants
        }
        return handlers
    }

    static func failures(_ payload: [UInt8]) -> Int? {
        guard let value = Int(String(decoding: payload, as: UTF8.self)), (0...100).contains(value) else { return nil }
        return value
    }

    /// Handlers that break their worker on purpose, for exercising fault handling; registered
    /// only with `taskmesh worker --fault-handlers`.
    static func addFaultHandlers(to handlers: inout Handlers) {
        do {
            // Kills the worker process, as a crashing handler would.
            try handlers.register("crash") { _ in fatalError("the crash handler ends this worker on purpose") }
            // Never returns, as a hung handler would: it ignores cancellation too.
            try handlers.register("hang") { job in
                while true { try? await Task.sleep(for: .seconds(3600)) }
            }
        } catch {
            fatalError("a built-in handler name is invalid: \(error)")
        }
    }

    static func milliseconds(_ payload: [UInt8]) -> Int? {
        guard let value = Int(String(decoding: payload, as: UTF8.self)), (0...3_600_000).contains(value) else { return nil }
        return value
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}

/// The error of the built-in `fail` handler; its description is what the client receives.
struct FailureOnRequest: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
