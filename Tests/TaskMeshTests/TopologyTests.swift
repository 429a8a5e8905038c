import Foundation
import Testing
@testable import TaskMesh

/// The repository's topologies/ folder, found from this file: Tests/TaskMeshTests/ -> ../../topologies.
private let topologiesFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .appendingPathComponent("topologies")

private func examplePath(_ name: String) -> String {
    topologiesFolder.appendingPathComponent(name).path
}

/// The error `Topology.parse` throws for `yaml`, or nil if it parses.
private func parseError(_ yaml: String, source: String = "test.yaml") -> TopologyError? {
    do {
        _ = try Topology.parse(yaml: yaml, source: source)
        return nil
    } catch {
        return error
    }
}

/// Writes `contents` to a fresh temporary file and passes its path to `body`.
private func withTemporaryFile<T>(_ contents: Data, _ body: (String) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("taskmesh-topology-\(UUID().uuidString).yaml")
    try contents.write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

private let directSink = """
    mode: direct
    sink:
      results:
        bind: tcp://*:5701
      clients:
        bind: tcp://*:5702

    """

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

@Suite struct TopologyValueParsingTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)),
        ("1s", .seconds(1)),
        ("1.5s", .milliseconds(1500)),
        ("2m", .seconds(120)),
        ("1h", .seconds(3600)),
        ("0.25ms", .microseconds(250)),
        (" 3 s ", .seconds(3)),
        ("0s", .zero),
        ("0.000000001s", .nanoseconds(1)),
    ])
    func durations(text: String, expected: Duration) throws {
        #expect(try ValueParsing.duration(text) == expected)
    }

    @Test(arguments: ["1", "s", "", "1.s", ".5s", "1x", "-1s", "1.5.5s", "1sec", "1e3s", "1.0000000001s",
                      "99999999999999999999h", "3000000h"])
    func invalidDurations(text: String) {
        #expect(throws: ValueProblem.self) { try ValueParsing.duration(text) }
    }

    @Test func aBareNumberIsRefusedForWantOfAUnit() throws {
        let problem = try #require(throws: ValueProblem.self) { try ValueParsing.duration("5") }
        #expect(problem.message.contains("needs a unit"))
    }

    @Test(arguments: [
        ("1024", 1024), ("0", 0), ("7B", 7), ("1KB", 1000), ("64KiB", 65_536), ("1MB", 1_000_000),
        ("16MiB", 16 << 20), ("1GB", 1_000_000_000), ("2GiB", 2 << 30), ("16mib", 16 << 20), ("16 MiB", 16 << 20),
    ])
    func sizes(text: String, expected: Int) throws {
        #expect(try ValueParsing.size(text) == expected)
    }

    @Test(arguments: ["", "MiB", "1.5MiB", "16 parsecs", "-1", "99999999999999999999", "9999999999999GiB", "1TiB"])
    func invalidSizes(text: String) {
        #expect(throws: ValueProblem.self) { try ValueParsing.size(text) }
    }

    @Test(arguments: [
        "tcp://*:5701", "tcp://127.0.0.1:0", "tcp://[::1]:5701", "tcp://host.example:*",
        "ipc:///tmp/taskmesh.sock", "inproc://taskmesh-sink",
    ])
    func validEndpoints(text: String) throws {
        #expect(try TopologyEndpoint.parse(text).text == text)
    }

    @Test(arguments: [
        "udp://host:1", "tcp://127.0.0.1", "tcp://:5701", "tcp://host:", "tcp://host:70000", "tcp://host:-1",
        "tcp://::1:5701", "tcp://[::1:5701", "tcp://host:57a", "tcp://a b:1", "inproc://", "ipc://",
        "127.0.0.1:5701", "TCP://host:1", "ipc://" + String(repeating: "x", count: 200),
    ])
    func invalidEndpoints(text: String) {
        #expect(throws: ValueProblem.self) { try TopologyEndpoint.parse(text) }
    }

    @Test func wildcardAndPortRules() throws {
        #expect(try TopologyEndpoint.parse("tcp://*:5701").hasWildcardHost)
        #expect(try !TopologyEndpoint.parse("tcp://127.0.0.1:5701").hasWildcardHost)
        #expect(try !TopologyEndpoint.parse("tcp://127.0.0.1:0").hasFixedPort)
        #expect(try !TopologyEndpoint.parse("tcp://127.0.0.1:*").hasFixedPort)
        #expect(try TopologyEndpoint.parse("tcp://127.0.0.1:5701").hasFixedPort)
        #expect(try TopologyEndpoint.parse("tcp://*:5701").connectable.text == "tcp://127.0.0.1:5701")
    }

    @Test func suggestions() {
        #expect(FieldSuggestion.closest(to: "intervall", among: ["interval", "liveness"]) == "interval")
        #expect(FieldSuggestion.closest(to: "maxPayload", among: ["max_payload", "send_hwm"]) == "max_payload")
        #expect(FieldSuggestion.closest(to: "drect", among: ["local", "direct", "reliable"]) == "direct")
        #expect(FieldSuggestion.closest(to: "banana", among: ["interval", "liveness"]) == nil)
    }

    @Test func durationsFormatTheWayFilesWriteThem() {
        #expect(ValueParsing.format(.seconds(1)) == "1s")
        #expect(ValueParsing.format(.milliseconds(1500)) == "1500ms")
        #expect(ValueParsing.format(.seconds(120)) == "2m")
        #expect(ValueParsing.format(.seconds(7200)) == "2h")
        #expect(ValueParsing.format(.zero) == "0ms")
    }
}

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
        ("worker:\n  concurrency: -1", "worker.concurrency", "expected a positive integer, got -1"),
        ("worker:\n  prefetch: -1", "worker.prefetch", "expected an integer from 0 to 32767, got -1"),
        ("worker:\n  processes: 1.5", "worker.processes", "expected a positive integer, got 1.5"),
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
private let reliableBroker = """
    mode: reliable
    broker:
      clients:
        bind: tcp://*:5801
      workers:
        bind: tcp://*:5802

    """

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
