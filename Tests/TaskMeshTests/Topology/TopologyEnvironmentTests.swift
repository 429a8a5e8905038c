import Foundation
import Testing
@testable import TaskMesh

@Suite struct TopologyEnvironmentTests {
    @Test func variableName() {
        #expect(Topology.environmentVariable == "TASKMESH_TOPOLOGY")
    }

    @Test func unsetOrEmptyVariableGivesTheDefault() throws {
        #expect(try Topology.fromEnvironment([:]) == .local)
        #expect(try Topology.fromEnvironment(["TASKMESH_TOPOLOGY": ""]) == .local)
        let fallback = Topology.loopback(port: 5801)
        #expect(try Topology.fromEnvironment(["OTHER": "x"], default: fallback) == fallback)
    }

    @Test func variableNamesTheFileToLoad() throws {
        let topology = try Topology.fromEnvironment(["TASKMESH_TOPOLOGY": examplePath("direct.yaml")])
        #expect(topology == (try Topology.load(path: examplePath("direct.yaml"))))
        #expect(topology.mode == .direct)
    }

    @Test func variableWinsOverTheDefault() throws {
        try withTemporaryFile(Data(directSink.utf8)) { path in
            let topology = try Topology.fromEnvironment(["TASKMESH_TOPOLOGY": path], default: .local)
            #expect(topology.mode == .direct)
            #expect(topology.sink?.resultsEndpoint == "tcp://127.0.0.1:5701")
        }
    }

    @Test func variableNamingAMissingFileIsAnErrorNotTheDefault() throws {
        let path = "/nonexistent/taskmesh-\(UUID().uuidString).yaml"
        let error = try #require(throws: TopologyError.self) {
            try Topology.fromEnvironment(["TASKMESH_TOPOLOGY": path])
        }
        #expect(error.source == path)
        #expect(error.message.contains("no such file"))
        #expect(error.message.contains("TASKMESH_TOPOLOGY"))
    }
}

/// The `broker:` section of reliable mode (docs/TOPOLOGY.md, "broker").
