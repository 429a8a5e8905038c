import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TaskMesh

/// `faketime` (Debian package `faketime`, installed by scripts/setup.sh), or nil when missing.
private let faketimePath: String? = ["/usr/bin/faketime", "/usr/local/bin/faketime"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }
    ?? ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":")
        .map { "\($0)/faketime" }.first { FileManager.default.isExecutableFile(atPath: $0) }

/// A worker whose wall clock is a minute off its client's still runs every job: deadlines travel
/// as the time remaining (docs/PROTOCOL.md, section 4), so no clock has to agree with another.
/// The worker runs under `faketime` with `FAKETIME_DONT_FAKE_MONOTONIC=1`: only its wall clock
/// moves; its monotonic clock, which decides deadlines and heartbeats, stays true.
@Suite(.serialized, .enabled(if: faketimePath != nil,
                             "faketime is not installed: the clock-skew tests need it (apt-get install faketime, or scripts/setup.sh)"))
struct ClockSkewProcessTests {
    @Test(arguments: RunningHub.Kind.allCases, [60, -60])
    func aWorkerWhoseWallClockIsAMinuteOffRunsEveryJob(_ kind: RunningHub.Kind, offsetSeconds: Int) async throws {
        let faketime = try #require(faketimePath)
        let mesh = try await RunningHub.start(kind)
        let log = temporaryPath("skewed")
        let offset = offsetSeconds > 0 ? "+\(offsetSeconds)s" : "\(offsetSeconds)s"
        let worker = try await mesh.startWorker("skewed", handlers: ["echo"], concurrency: 4, log: log,
                                                launcher: [faketime, "-f", offset],
                                                environment: ["FAKETIME_DONT_FAKE_MONOTONIC": "1"])
        // `faketime` runs the worker as its child: `ChildProcess` ends only `faketime`, so the
        // worker itself is ended by its process id when the test ends.
        let forked = ForkedChildren(of: worker.pid)
        defer { forked.kill() }
        try expectWallClock(of: worker, isOffBy: offsetSeconds)
        let (handle, client) = try await mesh.connect()
        try await mesh.waitForWorkers(client, count: 1, handlers: ["echo"])

        let payloads = (0..<200).map { n in Array("job-\(n)".utf8) }
        // 20 s: far shorter than the skew, so a worker that read deadlines by its wall clock
        // would skip every job a minute ahead, yet long enough that a loaded machine (the
        // whole suite runs side by side) does not time jobs out.
        let handles = try payloads.map { try client.enqueue("echo", $0, options: JobOptions(deadline: .seconds(20))) }
        var ok = 0
        var failures: [String: Int] = [:]
        for (payload, job) in zip(payloads, handles) {
            do {
                if try await job.value() == payload { ok += 1 }
            } catch {
                failures["\(error.code)", default: 0] += 1
            }
        }
        #expect(ok == 200, "\(kind), worker clock \(offset): \(ok) of 200 jobs succeeded; failures \(failures)")
        #expect(executedJobIDs(log).count == 200, "every job ran once at the skewed worker")
        #expect(worker.isRunning)
        await handle.shutdown()
        withExtendedLifetime(worker) {}
    }

    /// Proves `faketime` took effect: the worker's log lines carry its wall-clock time, which must
    /// be off from ours by about `seconds`. Without this a launcher that did nothing would pass.
    private func expectWallClock(of worker: ChildProcess, isOffBy seconds: Int) throws {
        let output = worker.stderr + worker.stdout
        let pattern = /(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/
        let match = try #require(output.firstMatch(of: pattern), "no timestamp in the worker's log: \(output.prefix(400))")
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        components.year = Int(match.1)
        components.month = Int(match.2)
        components.day = Int(match.3)
        components.hour = Int(match.4)
        components.minute = Int(match.5)
        components.second = Int(match.6)
        let stamped = try #require(Calendar(identifier: .gregorian).date(from: components))
        let skew = stamped.timeIntervalSinceNow
        #expect(abs(skew - Double(seconds)) < 15, "the worker's wall clock is \(Int(skew)) s off ours, not \(seconds) s: \(match.0)")
    }
}

/// The processes `parent` forked, read once from /proc; `kill()` ends them (SIGKILL) and reaps
/// nothing: they are `parent`'s children, or init's once it is gone.
private struct ForkedChildren {
    let pids: [Int32]

    init(of parent: Int32) {
        let list = (try? String(contentsOfFile: "/proc/\(parent)/task/\(parent)/children", encoding: .utf8)) ?? ""
        pids = list.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    func kill() {
        for pid in pids { _ = Glibc.kill(pid, SIGKILL) }
    }
}
