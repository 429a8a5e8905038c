import Foundation
import Testing
@testable import TaskMesh

/// Jobs that expire while they wait behind a long one must free what they hold: afterwards
/// fresh jobs all succeed (reliable mode once stalled for good here: each skipped job kept a
/// broker slot, since only an answer frees one).
@Suite(.serialized) struct ExpiredJobsProcessTests {
    @Test(arguments: RunningHub.Kind.allCases)
    func jobsThatExpireInLineLeaveTheMeshWhole(_ kind: RunningHub.Kind) async throws {
        let mesh = try await RunningHub.start(kind)
        let log = temporaryPath("expiring")
        let worker = try await mesh.startWorker("busy", handlers: ["sleep", "echo"], concurrency: 1, log: log)
        let (handle, client) = try await mesh.connect()
        try await mesh.waitForWorkers(client, count: 1, handlers: ["sleep", "echo"])

        // Long enough that the doomed jobs, queued once it runs, still wait past their deadline when a
        // loaded machine is slow to see it start.
        let long = try client.enqueue("sleep", Array("5000".utf8), options: JobOptions(deadline: .seconds(20)))
        try await eventually("the long job runs") { executedJobIDs(log).count == 1 }
        let doomed = try (0..<20).map { n in try client.enqueue("echo", [UInt8(n)], options: JobOptions(deadline: .seconds(1))) }
        for job in doomed {
            await #expect { try await job.value() } throws: { ($0 as? JobError)?.code == .timedOut }
        }
        #expect(try await long.value() == Array("5000".utf8))
        // The expired jobs were skipped unstarted, each answered so that its slot is free again.
        let fresh = try (0..<100).map { n in try client.enqueue("echo", [UInt8(n)], options: JobOptions(deadline: .seconds(10))) }
        var ok = 0
        for (n, job) in fresh.enumerated() where try await job.value() == [UInt8(n)] { ok += 1 }
        #expect(ok == 100, "\(kind): \(ok) of 100 fresh jobs succeeded after 20 expired in line")
        #expect(executedJobIDs(log).count == 101, "no expired job ran")
        // Each skipped job was answered (status expired); the client had timed them out already.
        #expect(client.stats.droppedLateOrDuplicate > 0, "no answer came for a skipped job")
        #expect(worker.isRunning)
        await handle.shutdown()
    }
}
