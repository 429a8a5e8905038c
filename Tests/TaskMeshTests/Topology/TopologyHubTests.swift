import Testing
@testable import TaskMesh

/// A topology's hub decides its mode, and each role serves only the hub it is.
@Suite struct TopologyHubTests {
    @Test func theHubDecidesTheMode() {
        #expect(Topology.local.mode == .local && Topology.local.sink == .inProcess && Topology.local.broker == nil)
        #expect(Topology.loopback(port: 7000).mode == .direct && Topology.loopback(port: 7000).broker == nil)
        let reliable = Topology.reliableLoopback(port: 7000)
        #expect(reliable.mode == .reliable && reliable.sink == nil)
        #expect(reliable.broker?.workersEndpoint == "tcp://127.0.0.1:7001")
    }

    /// Setting a hub's fields through `sink` or `broker` changes that hub and never the mode.
    @Test func settingTheOtherHubChangesNothing() {
        var reliable = Topology.reliableLoopback(port: 7000)
        reliable.sink = .loopback(port: 9000)
        reliable.sink?.clientsEndpoint = "tcp://127.0.0.1:9"
        #expect(reliable == Topology.reliableLoopback(port: 7000))
        reliable.broker?.maxAttempts = 7
        #expect(reliable.broker?.maxAttempts == 7 && reliable.mode == .reliable)

        var direct = Topology.loopback(port: 7000)
        direct.broker = .loopback(port: 9000)
        #expect(direct == Topology.loopback(port: 7000))
        direct.sink?.clientsEndpoint = "tcp://127.0.0.1:9"
        #expect(direct.sink?.clientsEndpoint == "tcp://127.0.0.1:9" && direct.mode == .direct)
        var local = Topology.local
        local.sink?.resultsBind = "inproc://elsewhere"
        #expect(local.mode == .local && local.sink?.resultsBind == "inproc://elsewhere")
    }

    @Test func aRoleRefusesATopologyWithoutItsHub() {
        #expect { try Sink(topology: .reliableLoopback(port: 0)) } throws: {
            ($0 as? TopologyError)?.message.contains("a sink serves local and direct mode") == true
        }
        #expect { try Broker(topology: .loopback(port: 0)) } throws: {
            ($0 as? TopologyError)?.message.contains("a broker serves reliable mode; this topology is direct") == true
        }
        #expect { try Broker(topology: .local) } throws: { ($0 as? TopologyError)?.field == "mode" }
    }
}
