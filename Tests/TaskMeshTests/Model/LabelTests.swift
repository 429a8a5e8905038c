import Foundation
import Testing
@testable import TaskMesh

@Suite struct LabelTests {
    @Test func labelRules() {
        for good in ["gpu", "region-eu", "team_a", "zone:1", "pool/images", "v1.2"] { #expect(LabelRules.problem(with: good) == nil, "\(good)") }
        for bad in ["", "with space", "ümlaut", "semi;colon", String(repeating: "x", count: 256)] {
            #expect(LabelRules.problem(with: bad) != nil, "\(bad)")
        }
    }

    @Test func priorities() {
        #expect(JobPriority(0) == nil && JobPriority(10) == nil)
        #expect(JobPriority(1) == .lowest && JobPriority(9) == .highest && JobPriority(5) == .default)
        #expect(JobPriority.low < .default && JobPriority.default < .high)
    }

    @Test func topologyReadsLabelsWaitForWorkersAndUnroutableTimeout() throws {
        let topology = try Topology.parse(yaml: """
            mode: reliable
            broker:
              clients: { bind: "tcp://127.0.0.1:0" }
              workers: { bind: "tcp://127.0.0.1:0" }
              unroutable_timeout: 5s
            worker: { labels: [gpu, region-eu] }
            client: { wait_for_workers: true }
            """)
        #expect(topology.worker.labels == ["gpu", "region-eu"])
        #expect(topology.client.waitForWorkers)
        #expect(topology.broker?.unroutableTimeout == .seconds(5))
        let defaults = try Topology.parse(yaml: "mode: local")
        #expect(defaults.worker.labels.isEmpty && !defaults.client.waitForWorkers)
    }

    @Test func badLabelsAndFlagsAreClearErrors() {
        func message(_ yaml: String) -> String? {
            do { _ = try Topology.parse(yaml: yaml, source: "t.yaml"); return nil } catch { return error.description }
        }
        #expect(message("mode: local\nworker: { labels: gpu }")?.contains("worker.labels: expected a list of labels") == true)
        #expect(message("mode: local\nworker: { labels: [\"has space\"] }")?.contains("letters, digits") == true)
        #expect(message("mode: local\nclient: { wait_for_workers: maybe }")?.contains("client.wait_for_workers: expected true or false") == true)
    }
}

/// Routing inside one process (local mode): the same client and worker code as direct mode.
