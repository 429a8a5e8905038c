import Foundation
import Testing
@testable import TaskMesh

@Suite struct BrokerTopologyTests {
    @Test func reliableExampleLoadsWithItsBroker() throws {
        let topology = try Topology.load(path: examplePath("reliable.yaml"))
        #expect(topology.mode == .reliable)
        #expect(topology.broker == Topology.Broker(
            clientsBind: "tcp://127.0.0.1:5801", clientsEndpoint: "tcp://127.0.0.1:5801",
            workersBind: "tcp://127.0.0.1:5802", workersEndpoint: "tcp://127.0.0.1:5802",
            maxAttempts: 3, lease: .seconds(30), queueLimit: 100_000, resultTTL: .seconds(300)))
        #expect(topology.broker == .loopback(port: 5801))
        #expect(topology.worker.concurrency == 4)
        #expect(topology.worker.drainTimeout == .seconds(10))
        #expect(topology.worker.processes == 2)
        #expect(topology.client.deadline == .seconds(30))
        #expect(topology.heartbeat == Topology.Heartbeat(interval: .seconds(1), liveness: 3))
    }

    @Test func brokerDefaults() throws {
        let topology = try Topology.parse(yaml: reliableBroker)
        #expect(topology.mode == .reliable)
        #expect(topology.broker?.clientsBind == "tcp://*:5801")
        #expect(topology.broker?.clientsEndpoint == "tcp://127.0.0.1:5801")
        #expect(topology.broker?.workersBind == "tcp://*:5802")
        #expect(topology.broker?.workersEndpoint == "tcp://127.0.0.1:5802")
        #expect(topology.broker?.maxAttempts == 3)
        #expect(topology.broker?.lease == .seconds(30))
        #expect(topology.broker?.queueLimit == 100_000)
        #expect(topology.broker?.resultTTL == .seconds(300))
        #expect(topology.worker.bind == "tcp://127.0.0.1:0")
    }

    @Test func everyBrokerFieldIsRead() throws {
        let topology = try Topology.parse(yaml: """
            mode: reliable
            broker:
              clients:
                bind: tcp://*:6801
                endpoint: tcp://broker.example:6801
              workers:
                bind: ipc:///tmp/taskmesh-broker-workers.sock
              max_attempts: 1000
              lease: 1.5s
              queue_limit: 10
              result_ttl: 2m
            """)
        #expect(topology.broker == Topology.Broker(
            clientsBind: "tcp://*:6801", clientsEndpoint: "tcp://broker.example:6801",
            workersBind: "ipc:///tmp/taskmesh-broker-workers.sock", workersEndpoint: "ipc:///tmp/taskmesh-broker-workers.sock",
            maxAttempts: 1000, lease: .milliseconds(1500), queueLimit: 10, resultTTL: .seconds(120)))
        let one = try Topology.parse(yaml: reliableBroker + "  max_attempts: 1\n")
        #expect(one.broker?.maxAttempts == 1)
    }

    @Test(arguments: [
        ("mode: reliable\n", "broker.clients.bind", "missing required field in reliable mode (such as \"tcp://*:5801\")"),
        ("mode: reliable\nbroker:\n  clients:\n    bind: tcp://*:5801\n", "broker.workers.bind",
         "missing required field in reliable mode (such as \"tcp://*:5802\")"),
        ("mode: reliable\nbroker:\n  workers:\n    bind: tcp://*:5802\n", "broker.clients.bind",
         "missing required field in reliable mode (such as \"tcp://*:5801\")"),
    ])
    func missingBrokerBindIsAnError(yaml: String, field: String, message: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.field == field)
        #expect(error.message == message)
    }

    @Test func reliableModeRefusesASink() throws {
        let error = try #require(parseError(reliableBroker + "sink:\n  results:\n    bind: tcp://*:5701\n"))
        #expect(error.field == "sink")
        #expect(error.message == "reliable mode has no sink; its clients and workers meet at the broker")
    }

    @Test(arguments: [directSink, "mode: local\n"])
    func otherModesRefuseABroker(yaml: String) throws {
        let error = try #require(parseError(yaml + "broker:\n  max_attempts: 3\n"))
        #expect(error.field == "broker")
        #expect(error.message == "only reliable mode has a broker (mode: reliable)")
    }

    @Test(arguments: [
        ("  max_attempts: 0\n", "broker.max_attempts", "expected an integer from 1 to 1000, got 0"),
        ("  max_attempts: 1001\n", "broker.max_attempts", "expected an integer from 1 to 1000, got 1001"),
        ("  max_attempts: three\n", "broker.max_attempts", "expected an integer from 1 to 1000, got \"three\""),
        ("  lease: soon\n", "broker.lease", "expected a duration such as \"500ms\", \"1s\", \"1.5s\" or \"2m\", got \"soon\""),
        ("  lease: 30\n", "broker.lease", "a duration needs a unit"),
        ("  lease: 0s\n", "broker.lease", "expected a duration longer than zero, got \"0s\""),
        ("  lease: 30 sec\n", "broker.lease", "unknown duration unit \"sec\""),
        ("  result_ttl: 0ms\n", "broker.result_ttl", "expected a duration longer than zero"),
        ("  result_ttl: 5\n", "broker.result_ttl", "a duration needs a unit"),
        ("  queue_limit: 0\n", "broker.queue_limit", "expected a positive integer, got 0"),
        ("  queue_limit: \"100\"\n", "broker.queue_limit", "expected a positive integer, got \"100\""),
    ])
    func badBrokerValues(fragment: String, field: String, message: String) throws {
        let error = try #require(parseError(reliableBroker + fragment))
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test(arguments: [
        (reliableBroker.replacingOccurrences(of: "tcp://*:5802", with: "tcp://127.0.0.1:5801"), "broker.workers.bind",
         "must not share an address or port with broker.clients.bind (\"tcp://*:5801\"), got \"tcp://127.0.0.1:5801\""),
        (reliableBroker.replacingOccurrences(of: "tcp://*:5802", with: "tcp://*:5801"), "broker.workers.bind", "must not share"),
        (reliableBroker.replacingOccurrences(of: "tcp://*:5801", with: "inproc://broker"), "broker.clients.bind", "cannot use inproc://"),
        (reliableBroker.replacingOccurrences(of: "tcp://*:5802", with: "udp://*:5802"), "broker.workers.bind", "tcp://, ipc:// or inproc://"),
        (reliableBroker.replacingOccurrences(of: "    bind: tcp://*:5802\n", with: "    bind: tcp://*:5802\n    endpoint: tcp://*:5802\n"),
         "broker.workers.endpoint", "not a wildcard"),
        (reliableBroker.replacingOccurrences(of: "    bind: tcp://*:5801\n", with: "    bind: tcp://*:5801\n    endpoint: ipc:///tmp/c.sock\n"),
         "broker.clients.endpoint", "same transport"),
        (reliableBroker + "worker:\n  bind: inproc://worker\n", "worker.bind", "cannot use inproc://"),
    ])
    func badBrokerEndpoints(yaml: String, field: String, fragment: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.field == field)
        #expect(error.message.contains(fragment), "\(error.message)")
    }

    @Test(arguments: [
        (reliableBroker + "  max_attemps: 3\n", "broker.max_attemps", "unknown field (did you mean \"max_attempts\"?)"),
        (reliableBroker + "  queueLimit: 10\n", "broker.queueLimit", "unknown field (did you mean \"queue_limit\"?)"),
        (reliableBroker.replacingOccurrences(of: "bind: tcp://*:5802", with: "bnd: tcp://*:5802"), "broker.workers.bnd",
         "unknown field (did you mean \"bind\"?)"),
        (reliableBroker + "max_attempts: 3\n", "max_attempts", "unknown field (it belongs in \"broker\")"),
        (reliableBroker + "  concurrency: 4\n", "broker.concurrency", "unknown field (it belongs in \"worker\")"),
    ])
    func unknownBrokerFieldsAreNamedWithASuggestion(yaml: String, field: String, message: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.field == field)
        #expect(error.message == message)
    }

    @Test func brokerMustBeAMapping() throws {
        let error = try #require(parseError("mode: reliable\nbroker: tcp://*:5801\n"))
        #expect(error.field == "broker")
        #expect(error.message == "expected a mapping of fields (clients, workers, max_attempts, lease, queue_limit, result_ttl, unroutable_timeout), got \"tcp://*:5801\"")
    }

    @Test func brokerErrorsFromAFileNameTheFileAndTheField() throws {
        let error = try #require(parseError(reliableBroker + "  max_attempts: 0\n", source: "topologies/reliable.yaml"))
        #expect(error.description == "topologies/reliable.yaml: broker.max_attempts: expected an integer from 1 to 1000, got 0")
    }
}
