import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// In a secure mesh a worker takes a CANCEL only from the key that owns the job's client id.
struct SecureCancelTests {
    @Test func aWorkerIgnoresACancelFromAnotherKey() async throws {
        let owner = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let clientID = try #require(Z85.decode(owner.publicKey)) + [1, 2, 3, 4, 5, 6, 7, 8]
        var handlers = Handlers()
        try handlers.register("wait") { job in
            try await Task.sleep(for: .seconds(30))
            return job.payload
        }
        let runner = JobRunner(handlers: handlers, concurrency: 1, limit: 1 << 20, signal: try Signal(),
                               checksSender: true, published: Shared(WorkerStats()), logger: Logger(label: "secure-cancel"))
        let job = JobMessage(clientID: clientID, jobID: [7], handler: "wait", deadline: 0, attempt: 1, payload: [])
        runner.accept(job.encode(), declining: false, sender: owner.publicKey)
        runner.startAccepted()
        #expect(runner.inFlight == 1)
        try await Task.sleep(for: .milliseconds(100))  // a runner takes it (either way the owner's CANCEL ends it)
        let cancel = CancelMessage(clientID: clientID, jobID: [7]).encode()
        runner.cancel(cancel, sender: stranger.publicKey)
        #expect(runner.stats.malformed == 1 && runner.stats.cancelled == 0, "another key's CANCEL is dropped")
        runner.cancel(cancel, sender: owner.publicKey)
        try await eventually("the owner's CANCEL ends it") {
            runner.collectCompletions()
            return runner.inFlight == 0
        }
        #expect(runner.stats.cancelled == 1)
        runner.close()
    }
}
