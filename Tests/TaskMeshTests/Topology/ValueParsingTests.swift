import Foundation
import Testing
@testable import TaskMesh

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
