import Foundation
import Testing
@testable import TaskMesh

/// What a topology file (or a flag) may ask for is bounded, with an error naming the limit.
@Suite struct TopologyBoundsTests {
    /// 468 bytes of aliases nine deep expand to 387 million values: refused at once, where the
    /// loader used to grow past a gigabyte for as long as it was let run.
    @Test func nestedAliasesThatExpandPastTheLimitAreAnError() throws {
        var lines = ["mode: local", "a0: &a0 [\(Array(repeating: "\"lol\"", count: 9).joined(separator: ","))]"]
        for level in 1...8 { lines.append("a\(level): &a\(level) [\(Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ","))]") }
        lines.append("worker: { labels: *a8 }")
        let error = try #require(parseError(lines.joined(separator: "\n")))
        #expect(error.field == nil)
        #expect(error.message.contains("more than 100000 values once its aliases are expanded"), "\(error)")
    }

    /// Anchors and aliases within the limit still work.
    @Test func aFewAliasesAreFine() throws {
        let topology = try Topology.parse(yaml: "mode: local\nheartbeat:\n  interval: &t 2s\nworker:\n  drain_timeout: *t\n")
        #expect(topology.heartbeat.interval == .seconds(2) && topology.worker.drainTimeout == .seconds(2))
        let labels = try Topology.parse(yaml: "mode: local\nworker:\n  labels: &l [gpu, ssd]\n  bind: inproc://w\n")
        #expect(labels.worker.labels == ["gpu", "ssd"])
    }

    @Test func aFileOfMoreThanOneMebibyteIsRefusedUnread() throws {
        let path = temporaryPath("huge-topology")
        try Data(("mode: local\n" + String(repeating: "# padding\n", count: 110_000)).utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try Topology.load(path: path) } throws: { error in
            "\(error)".contains("a topology file may hold at most 1048576 (1 MiB)")
        }
    }

    @Test func concurrencyAndProcessesHaveCeilings() throws {
        let concurrency = try #require(parseError("mode: local\nworker:\n  concurrency: 100000000\n"))
        #expect(concurrency.field == "worker.concurrency")
        #expect(concurrency.message == "expected an integer from 1 to 32767, got 100000000")
        let processes = try #require(parseError("mode: local\nworker:\n  processes: 5000\n"))
        #expect(processes.message == "expected an integer from 1 to 1024, got 5000")
        #expect(try Topology.parse(yaml: "mode: local\nworker:\n  concurrency: 32767\n").worker.concurrency == 32767)
    }

    /// The library refuses what the file format does, whatever the caller passes.
    @Test func aWorkerRefusesAConcurrencyPastTheCeiling() throws {
        #expect { try Worker(topology: .local, handlers: Handlers(), concurrency: 100_000_000) } throws: { error in
            (error as? TopologyError)?.field == "worker.concurrency" && "\(error)".contains("1 to 32767")
        }
        #expect { try Worker(topology: .local, handlers: Handlers(), concurrency: 0) } throws: { error in
            (error as? TopologyError)?.field == "worker.concurrency"
        }
    }

    /// The command line says the same before it starts anything.
    @Test func theWorkerCommandRefusesAConcurrencyPastTheCeiling() async throws {
        let process = try ChildProcess("worker", ["worker", "--concurrency", "100000000"])
        #expect(try await process.waitForExit() != 0)
        #expect(process.stderr.contains("--concurrency must be 1 to 32767, got 100000000"), "\(process.stderr)")
    }
}
