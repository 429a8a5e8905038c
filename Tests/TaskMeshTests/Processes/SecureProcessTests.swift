import Foundation
import Testing
@testable import TaskMesh

/// Real processes in a CURVE mesh, with the loopback traffic captured by tshark.
@Suite(.serialized) struct SecureProcessTests {
    /// A direct-mode topology file on fixed free ports, secure with `keys` or plaintext.
    static func topologyFile(keys: TestKeys?) throws -> String {
        var yaml = """
        mode: direct
        sink:
          results: { bind: "tcp://127.0.0.1:\(try freePort())" }
          clients: { bind: "tcp://127.0.0.1:\(try freePort())" }
        worker:
          bind: tcp://127.0.0.1:0
        heartbeat:
          interval: 200ms
          liveness: 3

        """
        if let keys {
            yaml += """
            security:
              keys: { sink: "\(keys.path("sink.key"))", worker: "\(keys.path("worker.key"))", client: "\(keys.path("client.key"))" }
              servers: { sink: "\(keys.path("sink.pub"))" }
              allow: { clients: ["\(keys.path("client.pub"))"], workers: ["\(keys.path("worker.pub"))"] }

            """
        }
        return try temporaryTopologyFile("topology", yaml)
    }

    /// Starts a sink and two workers, captures their ports while `clients` run, and returns the
    /// capture's bytes.
    static func captureMesh(topology: String, clients: [[String]]) async throws -> (capture: [UInt8], statuses: [Int32], outputs: [String]) {
        let sink = try ChildProcess("sink", ["sink", "-t", topology])
        let sinkReady = fields(try await sink.waitForLine(startingWith: "ready "))
        var ports = [sinkReady["results"], sinkReady["clients"]].compactMap { $0?.split(separator: ":").last.map(String.init) }
        var workers: [ChildProcess] = []
        for index in 1...2 {
            let worker = try ChildProcess("worker-\(index)", ["worker", "-t", topology])
            let ready = fields(try await worker.waitForLine(startingWith: "ready "))
            ports.append(String(try #require(ready["endpoint"]).split(separator: ":").last!))
            workers.append(worker)
        }
        let pcap = temporaryPath("capture") + ".pcap"
        let filter = ports.map { "tcp port \($0)" }.joined(separator: " or ")
        // Through perl to clear the signal mask the test runner's thread passes on, so SIGTERM
        // stops the capture.
        let tshark = try ChildProcess("tshark", executable: "/usr/bin/perl", [
            "-MPOSIX", "-e", "sigprocmask(SIG_SETMASK, POSIX::SigSet->new); exec @ARGV",
            "/usr/bin/tshark", "-i", "lo", "-f", filter, "-w", pcap,
        ])
        try await eventually("tshark captures (\(tshark.stderr))", timeout: .seconds(30)) { tshark.stderr.contains("Capture started") }

        var statuses: [Int32] = [], outputs: [String] = []
        let running = try clients.enumerated().map { try ChildProcess("client-\($0.offset)", $0.element + ["-t", topology]) }
        for client in running {
            statuses.append(try await client.waitForExit(timeout: .seconds(120)))
            outputs.append(client.stdout + client.stderr)
        }
        // The mesh lived through its clients. Stop it, so nothing more crosses the wire (its
        // heartbeats would go on for ever), then let the capture catch up with what already did:
        // wait until its file stops growing (bounded), and stop it.
        #expect(sink.isRunning && workers.allSatisfy(\.isRunning))
        for process in [sink] + workers {
            process.signal(SIGTERM)
            _ = try await process.waitForExit(timeout: .seconds(20))
        }
        var lastSize = -1, steady = 0
        try await eventually("the capture settles", timeout: .seconds(15)) {
            let size = (try? FileManager.default.attributesOfItem(atPath: pcap)[.size] as? Int) ?? 0
            steady = size == lastSize ? steady + 1 : 0
            lastSize = size
            try await Task.sleep(for: .milliseconds(200))
            return steady >= 3
        }
        tshark.signal(SIGTERM)
        try await tshark.waitForExit(timeout: .seconds(20))
        return (Array(FileManager.default.contents(atPath: pcap) ?? Data()), statuses, outputs)
    }

    /// Whether `needle` occurs in `haystack` (a capture of megabytes: searched by Foundation,
    /// not byte by byte, so this synchronous scan holds a cooperative thread only briefly).
    static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        Data(haystack).range(of: Data(needle.utf8)) != nil
    }

    static func clients(marker: String) -> [[String]] {
        let many = (0..<3).map { _ in ["submit", "sha256", "--count", "2000", "--size", "64", "--verify", "--json", "--workers", "2"] }
        return many + [["submit", "echo", marker, "--count", "50", "--verify", "--workers", "2"]]
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark"), "tshark is installed by scripts/setup.sh"))
    func secureMeshServesThreeClientsAndShowsNothingInTheClear() async throws {
        let keys = try TestKeys()
        let marker = "PAYLOAD-\(UUID().uuidString)"
        let run = try await Self.captureMesh(topology: try Self.topologyFile(keys: keys), clients: Self.clients(marker: marker))
        for (status, output) in zip(run.statuses, run.outputs) {
            #expect(status == 0, "CLIENTOUT \(output.suffix(800))")
        }
        for output in run.outputs.prefix(3) {
            #expect(output.contains("\"ok\":2000") && output.contains("\"wrong\":0"), "\(output)")
        }
        #expect(run.capture.count > 100_000, "the capture holds the mesh's traffic")
        #expect(!Self.contains(run.capture, marker), "a payload crossed the wire in the clear")
        #expect(!Self.contains(run.capture, "sha256") && !Self.contains(run.capture, "echo"), "a handler name crossed the wire in the clear")
    }

    /// The control: the same capture of a plaintext mesh shows the payload and handler names, so
    /// the test above can fail.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark"), "tshark is installed by scripts/setup.sh"))
    func plaintextMeshShowsPayloadsInTheClear() async throws {
        let marker = "PAYLOAD-\(UUID().uuidString)"
        let clients = [["submit", "echo", marker, "--count", "50", "--verify", "--workers", "2"]]
        let run = try await Self.captureMesh(topology: try Self.topologyFile(keys: nil), clients: clients)
        #expect(run.statuses == [0], "\(run.outputs)")
        #expect(Self.contains(run.capture, marker) && Self.contains(run.capture, "echo"), "capture of \(run.capture.count) bytes")
    }
}
