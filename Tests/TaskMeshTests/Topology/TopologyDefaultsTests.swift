import Foundation
import Testing
@testable import TaskMesh

@Suite struct TopologyDefaultsTests {
    @Test func modeLocalAloneIsTheEmbeddedDefault() throws {
        #expect(try Topology.parse(yaml: "mode: local\n") == .local)
    }

    @Test func directModeFillsDefaultsFromTheInitialisers() throws {
        let topology = try Topology.parse(yaml: directSink)
        let expected = Topology(
            hub: .sink(.init(resultsBind: "tcp://*:5701", clientsBind: "tcp://*:5702",
                             resultsEndpoint: "tcp://127.0.0.1:5701", clientsEndpoint: "tcp://127.0.0.1:5702")),
            worker: .init(bind: "tcp://127.0.0.1:0")
        )
        #expect(topology == expected)
        #expect(topology.worker.concurrency == 4)
        #expect(topology.worker.processes == 2)
        #expect(topology.worker.drainTimeout == .seconds(10))
        #expect(topology.worker.advertiseHost == nil)
        #expect(topology.client.deadline == .seconds(30))
        #expect(topology.client.maxPending == 100_000)
        #expect(topology.client.spinWait == .microseconds(300))
        #expect(topology.heartbeat.interval == .seconds(1))
        #expect(topology.heartbeat.liveness == 3)
        #expect(topology.limits.maxPayload == 16 * 1024 * 1024)
        #expect(topology.limits.sendHighWaterMark == 10_000)
        #expect(topology.limits.receiveHighWaterMark == 10_000)
    }

    @Test(arguments: [
        ("tcp://*:5701", "tcp://127.0.0.1:5701"),
        ("tcp://0.0.0.0:5701", "tcp://127.0.0.1:5701"),
        ("tcp://[::]:5701", "tcp://[::1]:5701"),
        ("tcp://192.0.2.10:5701", "tcp://192.0.2.10:5701"),
        ("ipc:///tmp/taskmesh-results.sock", "ipc:///tmp/taskmesh-results.sock"),
    ])
    func endpointDefaultsToTheBindWithLoopbackForAWildcard(bind: String, endpoint: String) throws {
        let yaml = """
            mode: direct
            sink:
              results: {bind: "\(bind)"}
              clients: {bind: "tcp://127.0.0.1:5799"}
            """
        #expect(try Topology.parse(yaml: yaml).sink?.resultsEndpoint == endpoint)
    }

    @Test func explicitEndpointWins() throws {
        let yaml = directSink + """
            worker:
              concurrency: 1
            """
        let withEndpoint = yaml.replacingOccurrences(
            of: "    bind: tcp://*:5701\n", with: "    bind: tcp://*:5701\n    endpoint: tcp://sink.example:5701\n")
        let topology = try Topology.parse(yaml: withEndpoint)
        #expect(topology.sink?.resultsEndpoint == "tcp://sink.example:5701")
        #expect(topology.sink?.clientsEndpoint == "tcp://127.0.0.1:5702")
    }

    @Test func localModeFillsMissingFieldsFromTheLocalTopology() throws {
        let yaml = """
            mode: local
            sink:
              results:
                bind: inproc://my-results
            worker:
              concurrency: 7
            """
        let topology = try Topology.parse(yaml: yaml)
        #expect(topology.sink?.resultsBind == "inproc://my-results")
        #expect(topology.sink?.resultsEndpoint == "inproc://my-results")
        #expect(topology.sink?.clientsBind == Topology.local.sink?.clientsBind)
        #expect(topology.sink?.clientsEndpoint == Topology.local.sink?.clientsEndpoint)
        #expect(topology.worker.bind == Topology.local.worker.bind)
        #expect(topology.worker.concurrency == 7)
    }

    @Test func emptySectionsAndNullFieldsMeanDefaults() throws {
        let yaml = """
            mode: local
            worker:
            heartbeat:
              interval: ~
            limits: {}
            """
        #expect(try Topology.parse(yaml: yaml) == .local)
    }

    @Test func everyFieldIsRead() throws {
        let yaml = """
            mode: direct
            sink:
              results:
                bind: tcp://*:6701
                endpoint: tcp://sink.example:6701
              clients:
                bind: ipc:///tmp/taskmesh-clients.sock
            worker:
              bind: tcp://*:0
              advertise_host: worker-1.example
              concurrency: 16
              prefetch: 8
              drain_timeout: 1.5s
              processes: 3
            client:
              deadline: 2m
              max_pending: 500
              spin_wait: 0.5ms
            heartbeat:
              interval: 250ms
              liveness: 4
            limits:
              max_payload: 64KiB
              send_hwm: 0
              receive_hwm: 1_000
            """
        let expected = Topology(
            hub: .sink(.init(resultsBind: "tcp://*:6701", clientsBind: "ipc:///tmp/taskmesh-clients.sock",
                             resultsEndpoint: "tcp://sink.example:6701", clientsEndpoint: "ipc:///tmp/taskmesh-clients.sock")),
            worker: .init(bind: "tcp://*:0", advertiseHost: "worker-1.example", concurrency: 16, prefetch: 8,
                          drainTimeout: .milliseconds(1500), processes: 3),
            client: .init(deadline: .seconds(120), maxPending: 500, spinWait: .microseconds(500)),
            heartbeat: .init(interval: .milliseconds(250), liveness: 4),
            limits: .init(maxPayload: 65_536, sendHighWaterMark: 0, receiveHighWaterMark: 1_000)
        )
        #expect(try Topology.parse(yaml: yaml) == expected)
    }

    @Test func prefetchDefaultsByModeAndAnExplicitValueWins() throws {
        let unset = Topology.Worker(bind: "tcp://*:0", concurrency: 4)
        #expect(unset.prefetch(concurrency: 4, mode: .direct) == 32)
        #expect(unset.prefetch(concurrency: 64, mode: .local) == 64)
        #expect(unset.prefetch(concurrency: 4, mode: .reliable) == 0, "reliable credit starts at the free slots (then WorkerCredit sizes it)")
        let set = Topology.Worker(bind: "tcp://*:0", concurrency: 4, prefetch: 0)
        #expect(set.prefetch(concurrency: 4, mode: .direct) == 0)
        let reliable = try Topology.parse(yaml: "mode: reliable\nbroker:\n  clients: { bind: \"tcp://127.0.0.1:0\" }\n  workers: { bind: \"tcp://127.0.0.1:0\" }\nworker:\n  prefetch: 60\n")
        #expect(reliable.worker.prefetch(concurrency: 4, mode: reliable.mode) == 60)
    }

    @Test func aSizeMayBeAPlainNumberOfBytes() throws {
        let topology = try Topology.parse(yaml: "mode: local\nlimits:\n  max_payload: 1024\n")
        #expect(topology.limits.maxPayload == 1024)
    }
}
