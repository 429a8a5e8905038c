import Foundation
import Testing
@testable import TaskMesh

@Suite struct TopologyErrorTests {
    @Test func unknownFieldNamesTheFieldAndSuggestsTheRightOne() throws {
        let error = try #require(parseError("mode: local\nheartbeat:\n  intervall: 1s\n"))
        #expect(error.field == "heartbeat.intervall")
        #expect(error.message == "unknown field (did you mean \"interval\"?)")
        #expect(error.description == "test.yaml: heartbeat.intervall: unknown field (did you mean \"interval\"?)")
    }

    @Test func unknownFieldInCamelCaseSuggestsSnakeCase() throws {
        let error = try #require(parseError("mode: local\nlimits:\n  maxPayload: 1MiB\n"))
        #expect(error.field == "limits.maxPayload")
        #expect(error.message.contains("did you mean \"max_payload\""))
    }

    @Test func misplacedFieldSaysWhereItBelongs() throws {
        let error = try #require(parseError("mode: local\nconcurrency: 4\n"))
        #expect(error.field == "concurrency")
        #expect(error.message == "unknown field (it belongs in \"worker\")")
    }

    @Test func unknownFieldFarFromAnyOtherHasNoSuggestion() throws {
        let error = try #require(parseError("mode: local\nbanana: 1\n"))
        #expect(error.field == "banana")
        #expect(error.message == "unknown field")
    }

    @Test func unknownNestedSinkField() throws {
        let error = try #require(parseError(directSink.replacingOccurrences(of: "bind: tcp://*:5702", with: "bnd: tcp://*:5702")))
        #expect(error.field == "sink.clients.bnd")
        #expect(error.message.contains("did you mean \"bind\""))
    }

    @Test func wrongTypeShowsWhatWasExpectedAndWhatWasFound() throws {
        let error = try #require(parseError("mode: local\nlimits:\n  max_payload: [1, 2]\n"))
        #expect(error.field == "limits.max_payload")
        #expect(error.message == "expected a size such as \"16MiB\", got [1, 2]")
    }

    @Test func wrongTypeForAnInteger() throws {
        let error = try #require(parseError(directSink + "heartbeat:\n  liveness: zero\n", source: "topologies/direct.yaml"))
        #expect(error.source == "topologies/direct.yaml")
        #expect(error.field == "heartbeat.liveness")
        #expect(error.description == "topologies/direct.yaml: heartbeat.liveness: expected a positive integer, got \"zero\"")
    }

    @Test(arguments: [
        ("heartbeat:\n  liveness: 0", "heartbeat.liveness", "expected a positive integer, got 0"),
        ("worker:\n  concurrency: -1", "worker.concurrency", "expected an integer from 1 to 32767, got -1"),
        ("worker:\n  prefetch: -1", "worker.prefetch", "expected an integer from 0 to 32767, got -1"),
        ("worker:\n  processes: 1.5", "worker.processes", "expected an integer from 1 to 1024, got 1.5"),
        ("client:\n  max_pending: \"10\"", "client.max_pending", "expected a positive integer, got \"10\""),
        ("limits:\n  send_hwm: -1", "limits.send_hwm", "from 0 (unlimited) to 2147483647, got -1"),
        ("limits:\n  receive_hwm: 3000000000", "limits.receive_hwm", "got 3000000000"),
        ("heartbeat: 5", "heartbeat", "expected a mapping of fields (interval, liveness), got 5"),
        ("worker: [1]", "worker", "expected a mapping of fields"),
        ("mode: [local]", "mode", "expected local, direct or reliable, got [\"local\"]"),
        ("worker:\n  advertise_host: [a]", "worker.advertise_host", "expected a host name or address"),
    ])
    func wrongTypesAndRanges(fragment: String, field: String, message: String) throws {
        let yaml = fragment.hasPrefix("mode:") ? fragment : "mode: local\n" + fragment
        let error = try #require(parseError(yaml))
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func missingModeIsAnError() throws {
        let error = try #require(parseError("worker:\n  concurrency: 2\n"))
        #expect(error.field == "mode")
        #expect(error.message.contains("missing required field"))
    }

    @Test func unknownModeSuggestsTheClosest() throws {
        let error = try #require(parseError("mode: drect\n"))
        #expect(error.field == "mode")
        #expect(error.message == "expected local, direct or reliable, got \"drect\" (did you mean \"direct\"?)")
    }

    @Test(arguments: [
        ("mode: direct\n", "sink.results.bind"),
        ("mode: direct\nsink:\n  results:\n    bind: tcp://*:5701\n", "sink.clients.bind"),
    ])
    func missingSinkBindIsAnError(yaml: String, field: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.field == field)
        #expect(error.message.contains("missing required field"))
    }

    @Test(arguments: [
        (directSink.replacingOccurrences(of: "tcp://*:5701", with: "udp://*:5701"), "sink.results.bind", "tcp://, ipc:// or inproc://"),
        (directSink.replacingOccurrences(of: "tcp://*:5701", with: "tcp://*:99999"), "sink.results.bind", "from 0 to 65535"),
        (directSink.replacingOccurrences(of: "tcp://*:5701", with: "tcp://*"), "sink.results.bind", "needs a host and a port"),
        (directSink.replacingOccurrences(of: "tcp://*:5702", with: "tcp://127.0.0.1:5701"), "sink.clients.bind", "must not share"),
        (directSink.replacingOccurrences(of: "tcp://*:5701", with: "inproc://results"), "sink.results.bind", "cannot use inproc://"),
        (directSink + "worker:\n  bind: inproc://worker\n", "worker.bind", "cannot use inproc://"),
        (directSink + "worker:\n  bind: 5703\n", "worker.bind", "expected an endpoint such as"),
        (directSink + "worker:\n  advertise_host: 192.0.2.21:5703\n", "worker.advertise_host", "without a port"),
        (directSink + "worker:\n  advertise_host: \"*\"\n", "worker.advertise_host", "not a wildcard"),
        (directSink + "worker:\n  advertise_host: 2001:db8::21\n", "worker.advertise_host", "in brackets"),
        (directSink + "worker:\n  bind: ipc:///tmp/w.sock\n  advertise_host: host.example\n", "worker.advertise_host", "applies only to a tcp://"),
        (directSink.replacingOccurrences(of: "    bind: tcp://*:5701\n", with: "    bind: tcp://*:5701\n    endpoint: tcp://*:5701\n"),
         "sink.results.endpoint", "not a wildcard"),
        (directSink.replacingOccurrences(of: "    bind: tcp://*:5701\n", with: "    bind: tcp://*:5701\n    endpoint: ipc:///tmp/r.sock\n"),
         "sink.results.endpoint", "same transport"),
        ("mode: local\nworker:\n  bind: tcp://127.0.0.1:0\n", "worker.bind", "inproc:// endpoints only"),
        ("mode: local\nsink:\n  clients:\n    bind: ipc:///tmp/c.sock\n", "sink.clients.bind", "inproc:// endpoints only"),
        ("mode: local\nsink:\n  results:\n    endpoint: inproc://elsewhere\n", "sink.results.endpoint", "must equal its bind"),
    ])
    func badEndpoints(yaml: String, field: String, fragment: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.field == field)
        #expect(error.message.contains(fragment), "\(error.message)")
    }

    @Test(arguments: [
        ("heartbeat:\n  interval: 1", "heartbeat.interval", "needs a unit"),
        ("heartbeat:\n  interval: 5ms", "heartbeat.interval", "at least 10ms, got \"5ms\""),
        ("heartbeat:\n  interval: \"1\"", "heartbeat.interval", "needs a unit"),
        ("heartbeat:\n  interval: [1s]", "heartbeat.interval", "expected a duration such as \"1s\""),
        ("client:\n  deadline: 0s", "client.deadline", "longer than zero"),
        ("client:\n  spin_wait: 20ms", "client.spin_wait", "at most 10ms, got \"20ms\""),
        ("client:\n  spin_wait: 1", "client.spin_wait", "needs a unit"),
        ("worker:\n  drain_timeout: 10 parsecs", "worker.drain_timeout", "unknown duration unit \"parsecs\""),
        ("worker:\n  drain_timeout: -1s", "worker.drain_timeout", "expected a duration such as"),
    ])
    func badDurations(fragment: String, field: String, message: String) throws {
        let error = try #require(parseError("mode: local\n" + fragment))
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func bareNumberDurationSaysUnitsAreRequired() throws {
        let error = try #require(parseError("mode: local\nheartbeat:\n  interval: 1\n"))
        #expect(error.message == "a duration needs a unit, ms, s, m or h (such as \"1s\" or \"500ms\"), got 1")
    }

    @Test(arguments: [
        ("512MiB", "expected a size from 1 byte to 256MiB, got \"512MiB\""),
        ("0", "expected a size from 1 byte to 256MiB, got 0"),
        ("16 parsecs", "unknown size unit \"parsecs\""),
        ("1.5MiB", "whole number"),
        ("{a: 1}", "expected a size such as \"16MiB\", got {a: 1}"),
    ])
    func badSizes(value: String, message: String) throws {
        let error = try #require(parseError("mode: local\nlimits:\n  max_payload: \(value)\n"))
        #expect(error.field == "limits.max_payload")
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test(arguments: ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
    func emptyFileIsAnError(yaml: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.field == nil)
        #expect(error.message.contains("empty"))
        #expect(error.message.contains("mode"))
    }

    @Test(arguments: ["- mode: local\n", "just some text\n", "42\n"])
    func topLevelMustBeAMapping(yaml: String) throws {
        let error = try #require(parseError(yaml))
        #expect(error.field == nil)
        #expect(error.message.contains("expected a mapping of fields"))
        #expect(error.message.contains("at the top level"))
    }

    @Test func invalidYAMLReportsTheLine() throws {
        let error = try #require(parseError("mode: local\nworker:\n  concurrency: 4\n  processes: [2\n"))
        #expect(error.field == nil)
        #expect(error.message.hasPrefix("invalid YAML at line"))
        let badIndent = try #require(parseError("mode: local\nworker:\n  concurrency: 4\n   processes: 2\n"))
        #expect(badIndent.message.hasPrefix("invalid YAML at line 4"), "\(badIndent.message)")
    }

    @Test func tabIndentationIsExplained() throws {
        let error = try #require(parseError("mode: local\nworker:\n\tconcurrency: 4\n"))
        #expect(error.field == nil)
        #expect(error.message.hasPrefix("invalid YAML at line 3"))
        #expect(error.message.contains("not tabs"))
    }

    @Test func duplicateFieldIsAnError() throws {
        let error = try #require(parseError("mode: local\nmode: direct\n"))
        #expect(error.field == nil)
        #expect(error.message.contains("\"mode\""))
        #expect(error.message.contains("more than once"))
    }

    @Test func missingFileNamesThePath() throws {
        let path = topologiesFolder.appendingPathComponent("no-such-topology-\(UUID().uuidString).yaml").path
        let error = try #require(throws: TopologyError.self) { try Topology.load(path: path) }
        #expect(error.source == path)
        #expect(error.field == nil)
        #expect(error.message == "no such file")
        #expect(error.description == "\(path): no such file")
    }

    @Test func directoryIsNotATopologyFile() throws {
        let error = try #require(throws: TopologyError.self) { try Topology.load(path: topologiesFolder.path) }
        #expect(error.source == topologiesFolder.path)
        #expect(error.message.contains("directory"))
    }

    @Test func nonUTF8FileIsAnError() throws {
        let error = try withTemporaryFile(Data([0x6D, 0x6F, 0xFF, 0xFE, 0x0A])) { path in
            try #require(throws: TopologyError.self) { try Topology.load(path: path) }
        }
        #expect(error.message.contains("UTF-8"))
    }

    @Test func fieldErrorsFromAFileNameTheFile() throws {
        try withTemporaryFile(Data("mode: local\nheartbeat:\n  liveness: 0\n".utf8)) { path in
            let error = try #require(throws: TopologyError.self) { try Topology.load(path: path) }
            #expect(error.source == path)
            #expect(error.field == "heartbeat.liveness")
            #expect(error.description.hasPrefix("\(path): heartbeat.liveness: "))
        }
    }
}
