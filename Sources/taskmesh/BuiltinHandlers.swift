import Crypto
import TaskMesh

/// The handlers `taskmesh worker` and `taskmesh demo` run.
enum BuiltinHandlers {
    static let names = ["echo", "sleep", "sha256", "fail"]
    static let faultNames = ["crash", "hang"]

    static func make() -> Handlers {
        var handlers = Handlers()
        // Returns its input unchanged.
        handlers.register("echo") { $0.payload }
        // Waits for the number of milliseconds the payload spells (0 to 3,600,000), then echoes it.
        handlers.register("sleep", validate: { job in
            guard milliseconds(job.payload) != nil else {
                throw JobRejection("the payload must be a number of milliseconds from 0 to 3600000")
            }
        }) { job in
            try await Task.sleep(for: .milliseconds(milliseconds(job.payload)!))
            return job.payload
        }
        // Returns the lowercase hex SHA-256 digest of the payload.
        handlers.register("sha256") { job in Array(hex(SHA256.hash(data: job.payload)).utf8) }
        // Always fails, with the payload as its message.
        handlers.register("fail") { job in
            throw FailureOnRequest(message: job.payload.isEmpty ? "failed on request" : String(decoding: job.payload, as: UTF8.self))
        }
        return handlers
    }

    /// Handlers that break their worker on purpose, for exercising fault handling; registered
    /// only with `taskmesh worker --fault-handlers`.
    static func addFaultHandlers(to handlers: inout Handlers) {
        // Kills the worker process, as a crashing handler would.
        handlers.register("crash") { _ in fatalError("the crash handler ends this worker on purpose") }
        // Never returns (until the worker stops), as a hung handler would.
        handlers.register("hang") { job in
            while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
            return job.payload
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
