import Foundation
import Testing
@testable import TaskMesh

@Suite struct TopologyExampleFileTests {
    @Test func everyExampleFileLoads() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: topologiesFolder.path)
            .filter { $0.hasSuffix(".yaml") }
            .sorted()
        #expect(Set(["local.yaml", "direct.yaml", "multihost.yaml"]).isSubset(of: Set(names)))
        for name in names {
            #expect(throws: Never.self, "\(name) must load") {
                _ = try Topology.load(path: examplePath(name))
            }
        }
    }

    @Test(arguments: [
        ("local.yaml", Topology.Mode.local),
        ("direct.yaml", .direct),
        ("multihost.yaml", .direct),
    ])
    func exampleFileHasItsMode(name: String, mode: Topology.Mode) throws {
        #expect(try Topology.load(path: examplePath(name)).mode == mode)
    }

    @Test func localExampleIsTheEmbeddedDefault() throws {
        #expect(try Topology.load(path: examplePath("local.yaml")) == .local)
    }

    @Test func directExampleUsesLoopbackPorts5701And5702() throws {
        let topology = try Topology.load(path: examplePath("direct.yaml"))
        #expect(topology == .loopback(port: 5701))
    }

    @Test func multihostExampleSeparatesBindsFromEndpoints() throws {
        let topology = try Topology.load(path: examplePath("multihost.yaml"))
        #expect(topology.sink?.resultsBind == "tcp://*:5701")
        #expect(topology.sink?.resultsEndpoint == "tcp://192.0.2.10:5701")
        #expect(topology.sink?.clientsBind == "tcp://*:5702")
        #expect(topology.sink?.clientsEndpoint == "tcp://192.0.2.10:5702")
        #expect(topology.worker.bind == "tcp://*:0")
        #expect(topology.worker.advertiseHost == "192.0.2.21")
        #expect(topology.worker.processes == 4)
        #expect(topology.heartbeat.liveness == 5)
        #expect(topology.client.deadline == .seconds(60))
    }
}
