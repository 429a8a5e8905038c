import Foundation
import Testing
@testable import TaskMesh
import ZMQ

// Codec tests for TMP/2 (docs/PROTOCOL.md): round trips, the exact bytes of the spec's example,
// every kind of malformed input with its specific `ProtocolViolation.Reason`, forward-compatible
// extension bytes, salvaging ids, and a seeded fuzz loop over every decoder.

// MARK: - Helpers

/// The reason `body` throws, or nil when it returns.
/// Any other error is a test failure: decoders throw only `ProtocolViolation`.
private func reason<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> ProtocolViolation.Reason? {
    do {
        _ = try body()
        return nil
    } catch let violation as ProtocolViolation {
        return violation.reason
    } catch {
        Issue.record("threw \(type(of: error)), not ProtocolViolation: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Expects `body` to throw a `ProtocolViolation` for `expected`.
private func expectViolation<T>(_ expected: ProtocolViolation.Reason, _ comment: Comment? = nil,
                                sourceLocation: SourceLocation = #_sourceLocation,
                                _ body: () throws -> T) {
    let got = reason(body, sourceLocation: sourceLocation)
    #expect(got == expected, comment, sourceLocation: sourceLocation)
}

/// Hand-built wire fields, independent of `ByteWriter`, so the tests do not check the encoder
/// against itself.
private enum Raw {
    static func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    static func u64(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
    }

    static func short(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count)] + bytes }
    static func short(_ text: String) -> [UInt8] { short(Array(text.utf8)) }

    static func u32(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) }
    }

    /// A header: signature, version 2, `command`, the header's length, then `fields` in order.
    static func header(_ command: UInt8, _ fields: [UInt8]...) -> [UInt8] {
        let fields = Array(fields.joined())
        return [0x54, 0x4D, 0x02, command] + u32(UInt32(8 + fields.count)) + fields
    }

    static func job(deadline: UInt64 = 0, attempt: UInt16 = 1, client: [UInt8] = [0x63], job: [UInt8] = [1, 2],
                    handler: [UInt8] = Array("echo".utf8)) -> [UInt8] {
        header(0x01, u64(deadline), u16(attempt), short(client), short(job), short(handler))
    }

    static func result(status: UInt8 = 0, attempt: UInt16 = 1, client: [UInt8] = [0x63], job: [UInt8] = [1, 2]) -> [UInt8] {
        header(0x02, [status], u16(attempt), short(client), short(job))
    }

    static func announce(concurrency: UInt16 = 4, worker: [UInt8] = Array("w1".utf8),
                         endpoint: [UInt8] = Array("tcp://h:1".utf8), publicKey: [UInt8] = []) -> [UInt8] {
        header(0x03, u16(concurrency), short(worker), short(endpoint), short(publicKey))
    }

    static func bye(worker: [UInt8] = Array("w1".utf8)) -> [UInt8] { header(0x04, short(worker)) }

    /// A MEMBERS header with its flags byte (0: a full list without a capability table).
    static func membersHeader(epoch: UInt64 = 7, flags: UInt8 = 0) -> [UInt8] { header(0x06, u64(epoch), [flags]) }

    static func member(worker: [UInt8] = Array("w1".utf8), endpoint: [UInt8] = Array("tcp://h:1".utf8),
                       concurrency: UInt16 = 4, publicKey: [UInt8] = []) -> [UInt8] {
        short(worker) + short(endpoint) + u16(concurrency) + short(publicKey)
    }

    static func membersBody(count: UInt16, _ members: [UInt8]...) -> [UInt8] { u16(count) + members.joined() }
}

/// A message's header and body, split where its preamble says the header ends (read here, not
/// by the codec); a message too short for a preamble is all header.
func wireParts(_ message: [UInt8]) -> [[UInt8]] {
    guard message.count >= 8 else { return [message, []] }
    let stated = message[4..<8].reduce(0) { $0 << 8 | Int($1) }
    let length = min(message.count, max(8, stated))
    return [Array(message[..<length]), Array(message[length...])]
}

/// `header` with its preamble's length set to the bytes it has: a header cut or grown by hand.
func restated(_ header: [UInt8]) -> [UInt8] {
    guard header.count >= 8 else { return header }
    var fixed = header
    fixed.replaceSubrange(4..<8, with: Raw.u32(UInt32(header.count)))
    return fixed
}

extension Array where Element == [UInt8] {
    /// A header and a body (as hand-built tests keep them) joined into one message.
    var joinedMessage: [UInt8] { [UInt8](joined()) }
}

/// A test argument with a short readable name (the values themselves can be kilobytes long).
struct WireCase<Value: Sendable>: Sendable, CustomTestStringConvertible {
    let name: String
    let value: Value
    init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }

    var testDescription: String { name }
}

/// Every decoder of the protocol, run on one message.
enum WireDecoder: String, CaseIterable, Sendable {
    case job, result, members, workerToSink, sinkToClient, announce, bye, jobs, results

    func run(_ message: [UInt8]) throws(ProtocolViolation) {
        switch self {
        case .job: _ = try JobMessage.decode(message)
        case .result: _ = try ResultMessage.decode(message)
        case .members: _ = try MembersMessage.decode(message)
        case .workerToSink: _ = try WorkerToSink.decode(message)
        case .sinkToClient: _ = try SinkToClient.decode(message)
        case .announce: _ = try AnnounceMessage.decode(message)
        case .bye: _ = try ByeMessage.decode(message)
        case .jobs: _ = try JobBatch.decode(message)
        case .results: _ = try ResultBatch.decode(message)
        }
    }

    /// The decoders of messages with a body.
    static let framed: [WireDecoder] = [.job, .result, .members, .workerToSink, .sinkToClient, .jobs, .results]
}

/// A 255-byte binary id using every byte value but 255 (including 0x00).
private let binaryID255: [UInt8] = (0..<255).map { UInt8($0) }
/// A 255-byte UTF-8 name of three-byte characters.
private let cjkName255 = String(repeating: "日", count: 85)

@Suite struct ProtocolTests {}

// MARK: - Round trips

extension ProtocolTests {
    @Suite struct RoundTrips {
        static let jobs: [WireCase<JobMessage>] = [
            WireCase("small", JobMessage(clientID: [0x63], jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: [1, 2, 3])),
            WireCase("empty payload", JobMessage(clientID: [1], jobID: [2], handler: "h", deadline: 1, attempt: 1, payload: [])),
            WireCase("binary ids", JobMessage(clientID: [0x00, 0xFF, 0x00], jobID: [0xFF, 0x00], handler: "x", deadline: 12345, attempt: 2, payload: [0])),
            WireCase("255-byte ids and handler", JobMessage(clientID: binaryID255, jobID: binaryID255.reversed(), handler: String(repeating: "a", count: 255),
                                                         deadline: .max, attempt: .max, payload: Array(repeating: 0xAB, count: 1000))),
            WireCase("non-ASCII handler", JobMessage(clientID: [9], jobID: [9], handler: "récupère-日本語-🚀", deadline: 1_700_000_000_000, attempt: 3, payload: [])),
            WireCase("255-byte multi-byte handler", JobMessage(clientID: [1], jobID: [1], handler: cjkName255, deadline: 0, attempt: 0, payload: [0xFF])),
        ]

        @Test(arguments: jobs)
        func job(_ named: WireCase<JobMessage>) throws {
            let job = named.value
            let message = job.encode()
            let parts = wireParts(message)
            #expect(parts[0].count == 18 + 1 + job.clientID.count + 1 + job.jobID.count + 1 + job.handler.utf8.count)
            #expect(Array(message.prefix(4)) == [0x54, 0x4D, 0x02, 0x01])
            #expect(parts[1] == job.payload)
            #expect(try JobMessage.decode(message) == job)
            let ids = try #require(JobMessage.salvageIDs(message))
            #expect(ids.clientID == job.clientID)
            #expect(ids.jobID == job.jobID)
        }

        @Test(arguments: ResultStatus.allCases)
        func result(_ status: ResultStatus) throws {
            let samples = [
                ResultMessage(status: status, attempt: 1, clientID: [0x63], jobID: [0, 0, 0, 1], body: Array("hi".utf8)),
                ResultMessage(status: status, attempt: .max, clientID: binaryID255, jobID: binaryID255, body: []),
                ResultMessage(status: status, attempt: 0, clientID: [0x00], jobID: [0xFF], body: Array("fehlgeschlagen: ü".utf8)),
            ]
            for result in samples {
                let message = result.encode()
                let parts = wireParts(message)
                #expect(parts[0].count == 11 + 1 + result.clientID.count + 1 + result.jobID.count)
                #expect(message[8] == status.rawValue)
                #expect(parts[1] == result.body)
                #expect(try ResultMessage.decode(message) == result)
                #expect(try SinkToClient.decode(message) == .result(result))
                #expect(try WorkerToSink.decode(message) == .result(clientID: result.clientID, count: 1))
                #expect(try ResultMessage.clientID(inHeader: message, headerLength: parts[0].count) == result.clientID)
            }
        }

        static let announces: [WireCase<AnnounceMessage>] = [
            WireCase("tcp", AnnounceMessage(workerID: Array("host-12-ab".utf8), endpoint: "tcp://10.0.0.1:5555", concurrency: 8)),
            WireCase("binary id, zero concurrency", AnnounceMessage(workerID: [0, 0xFF], endpoint: "ipc:///tmp/w", concurrency: 0)),
            WireCase("255-byte id and endpoint", AnnounceMessage(workerID: binaryID255, endpoint: "tcp://" + String(repeating: "h", count: 249), concurrency: .max)),
            WireCase("non-ASCII endpoint", AnnounceMessage(workerID: [7], endpoint: "inproc://wörker-日本", concurrency: 1)),
        ]

        @Test(arguments: announces)
        func announce(_ named: WireCase<AnnounceMessage>) throws {
            let announce = named.value
            let message = announce.encode()
            #expect(wireParts(message)[1].isEmpty)
            #expect(message.count == 10 + 1 + announce.workerID.count + 1 + announce.endpoint.utf8.count + 1 + announce.publicKey.count)
            #expect(try ByteReader.command(of: message) == .announce)
            #expect(try AnnounceMessage.decode(message) == announce)
            #expect(try WorkerToSink.decode(message) == .announce(announce))
        }

        @Test(arguments: [[UInt8(1)], [0x00], Array("host-1-x".utf8), binaryID255])
        func bye(_ workerID: [UInt8]) throws {
            let bye = ByeMessage(workerID: workerID)
            let message = bye.encode()
            #expect(message == Raw.bye(worker: workerID))
            #expect(try ByeMessage.decode(message) == bye)
            #expect(try WorkerToSink.decode(message) == .bye(bye))
        }

        /// A worker's HEARTBEAT says how many jobs it holds, and may carry a probe; the bare
        /// preamble (no count) is still a heartbeat, half a count, half a probe or a byte more
        /// is not.
        @Test func workerHeartbeat() throws {
            let message = WorkerHeartbeat(held: 3).encode()
            #expect(message == [0x54, 0x4D, 0x02, 0x08, 0, 0, 0, 12, 0, 0, 0, 3])
            #expect(try WorkerToBroker.decode(message) == .heartbeat(held: 3))
            #expect(try WorkerToBroker.decode(bareCommand(.heartbeat)) == .heartbeat(held: nil))
            let probing = WorkerHeartbeat(held: 3, probe: 0x0102_0304).encode()
            #expect(probing == [0x54, 0x4D, 0x02, 0x08, 0, 0, 0, 16, 0, 0, 0, 3, 1, 2, 3, 4])
            #expect(try WorkerToBroker.decode(probing) == .heartbeat(held: 3, probe: 0x0102_0304))
            expectViolation(.truncated) { try WorkerToBroker.decode([0x54, 0x4D, 0x02, 0x08, 0, 0, 0, 10, 0, 0]) }
            expectViolation(.truncated) { try WorkerToBroker.decode([0x54, 0x4D, 0x02, 0x08, 0, 0, 0, 13, 0, 0, 0, 3, 0]) }
            expectViolation(.trailing) { try WorkerToBroker.decode([0x54, 0x4D, 0x02, 0x08, 0, 0, 0, 17, 0, 0, 0, 3, 1, 2, 3, 4, 0]) }
        }

        /// The broker's HEARTBEAT answering a probe carries it back after its two fields; one
        /// without is as before.
        @Test func brokerHeartbeatEchoesAProbe() throws {
            let answer = HeartbeatMessage(instance: 9, workers: 2, echo: 0x0102_0304).encode()
            #expect(answer == [0x54, 0x4D, 0x02, 0x08, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 1, 2, 3, 4])
            #expect(try FromBroker.decode(answer) == .heartbeat(HeartbeatMessage(instance: 9, workers: 2, echo: 0x0102_0304)))
            let plain = HeartbeatMessage(instance: 9, workers: 2).encode()
            #expect(plain.count == 18)
            #expect(try FromBroker.decode(plain) == .heartbeat(HeartbeatMessage(instance: 9, workers: 2)))
        }

        @Test func hello() throws {
            let message = HelloMessage().encode()
            #expect(message == [0x54, 0x4D, 0x02, 0x05, 0, 0, 0, 8])
            #expect(try ByteReader.command(of: message) == .hello)
        }

        static let memberLists: [WireCase<MembersMessage>] = [
            WireCase("no members", MembersMessage(epoch: 0, members: [])),
            WireCase("one member", MembersMessage(epoch: .max, members: [.init(workerID: [1], endpoint: "tcp://a:1", concurrency: 1)])),
            WireCase("several members", MembersMessage(epoch: 42, members: [
                .init(workerID: [0x00], endpoint: "tcp://a:1", concurrency: 0),
                .init(workerID: binaryID255, endpoint: "ipc:///tmp/ü-日", concurrency: .max),
                .init(workerID: Array("w3".utf8), endpoint: "tcp://" + String(repeating: "z", count: 249), concurrency: 16),
            ])),
            WireCase("4096 members (the maximum)", MembersMessage(epoch: 9, members: (0..<Wire.maxMembers).map {
                .init(workerID: Raw.u16(UInt16($0)), endpoint: "tcp://10.0.\($0 / 256).\($0 % 256):5555", concurrency: UInt16($0 % 7))
            })),
        ]

        @Test(arguments: memberLists)
        func members(_ named: WireCase<MembersMessage>) throws {
            let members = named.value
            let message = members.encode()
            let parts = wireParts(message)
            #expect(parts[0] == Raw.membersHeader(epoch: members.epoch))
            let bodyLength = 2 + members.members.reduce(0) { $0 + 1 + $1.workerID.count + 1 + $1.endpoint.utf8.count + 2 + 1 + $1.publicKey.count }
            #expect(parts[1].count == bodyLength)
            #expect(Array(parts[1].prefix(2)) == Raw.u16(UInt16(members.members.count)))
            #expect(try MembersMessage.decode(message) == members)
            #expect(try SinkToClient.decode(message) == .members(members))
        }
    }
}

// MARK: - The example of docs/PROTOCOL.md, section 9

extension ProtocolTests {
    @Suite struct SpecExample {
        static let job = JobMessage(clientID: [0x63], jobID: [0, 0, 0, 0, 0, 0, 0, 1], handler: "echo",
                                    deadline: 0, attempt: 1, payload: Array("hi".utf8))
        static let result = ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [0, 0, 0, 0, 0, 0, 0, 1],
                                          body: Array("hi".utf8))

        static let jobMessage: [UInt8] = [
            0x54, 0x4D, 0x02, 0x01, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x63,
            0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x65, 0x63, 0x68, 0x6F,
            0x68, 0x69,
        ]
        static let resultMessage: [UInt8] = [
            0x54, 0x4D, 0x02, 0x02, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x01, 0x01, 0x63, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
            0x68, 0x69,
        ]

        @Test func jobEncodesToTheExampleBytes() throws {
            #expect(Self.job.encode() == Self.jobMessage)
            #expect(try JobMessage.decode(Self.jobMessage) == Self.job)
        }

        @Test func resultEncodesToTheExampleBytes() throws {
            #expect(Self.result.encode() == Self.resultMessage)
            #expect(try ResultMessage.decode(Self.resultMessage) == Self.result)
            #expect(try WorkerToSink.decode(Self.resultMessage) == .result(clientID: [0x63], count: 1))
        }

        /// Reads the hex dumps of section 9 from the document itself, so the document, these tests
        /// and the codec cannot drift apart. Each message is a `header:` line, maybe a `body:`
        /// line, and their continuation lines.
        @Test func documentShowsTheseBytes() throws {
            let text = try RepositoryFiles.text("docs/PROTOCOL.md")
            let section = try #require(text.range(of: "## 9. Example"))
            var dumps: [[UInt8]] = []
            func bytes(_ text: Substring) throws -> [UInt8] {
                try text.split(separator: " ").map { token in try #require(UInt8(token, radix: 16)) }
            }
            var inDump = false
            for line in text[section.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("header: ") || line.hasPrefix("body: ") {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    try #require(parts.count == 2)
                    if line.hasPrefix("header: ") {
                        dumps.append(try bytes(parts[1]))
                    } else {
                        try #require(!dumps.isEmpty)
                        dumps[dumps.count - 1] += try bytes(parts[1])
                    }
                    inDump = true
                } else if inDump && line.hasPrefix("        ") {  // a dump continued on the next line
                    dumps[dumps.count - 1] += try bytes(line)
                } else {
                    inDump = false
                }
            }
            try #require(dumps.count == 15)
            let messages = dumps
            // Every dump's preamble states a header length that fits it.
            for message in messages { _ = try ReceivedMessage(message) }
            #expect(messages[0] == Self.jobMessage)
            #expect(messages[1] == Self.resultMessage)
            var jobs = JobBatchWriter(clientID: [0x63])
            jobs.append(jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: Array("hi".utf8))
            jobs.append(jobID: [2], handler: "echo", deadline: 0, attempt: 1, payload: [])
            #expect(messages[2] == jobs.encode())
            var results = ResultBatchWriter(clientID: [0x63])
            results.append(ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [1], body: Array("hi".utf8)))
            results.append(ResultMessage(status: .failed, attempt: 1, clientID: [0x63], jobID: [2], body: Array("no".utf8)))
            #expect(messages[3] == results.encode())
            // Capabilities and routing (section 5.8).
            let capabilities = Capabilities(handlers: ["sha256", "echo"], labels: ["gpu"])
            let announce = AnnounceMessage(workerID: Array("w".utf8), endpoint: "tcp://h:1", concurrency: 4, capabilities: capabilities)
            #expect(messages[4] == announce.encode())
            #expect(try AnnounceMessage.decode(messages[4]) == announce)
            let members = MembersMessage(epoch: 9, members: [.init(workerID: Array("w".utf8), endpoint: "tcp://h:1", concurrency: 4,
                                                                   capabilities: capabilities)])
            #expect(messages[5] == members.encode())
            #expect(try MembersMessage.decode(messages[5]) == members)
            #expect(messages[6] == MembersMessage(epoch: 9, members: [], unchanged: true).encode())
            let routed = JobMessage(clientID: [0x63], jobID: [3], handler: "sha256", deadline: 0, attempt: 1, payload: Array("hi".utf8),
                                    options: DispatchOptions(priority: 7, requires: ["gpu"]))
            #expect(messages[7] == routed.encode())
            #expect(try JobMessage.decode(messages[7]) == routed)
            // Deadlines (section 4): the client's JOB with 2 s left, and the broker's dispatch of
            // it after 500 ms in its queue.
            let timed = JobMessage(clientID: [0x63], jobID: [4], handler: "echo", deadline: WireDeadline.relative(.seconds(2)), attempt: 1,
                                   payload: Array("hi".utf8))
            #expect(messages[8] == timed.encode())
            #expect(try JobMessage.decode(messages[8]) == timed)
            var broker = BrokerState(config: .loopback(port: 5831), expiry: .seconds(60))
            let t0 = Instant.current
            _ = broker.submit(try JobMessage.decode(messages[8]), from: [0x63], now: t0)
            let sent = broker.ready(ReadyMessage(workerID: Array("w".utf8), concurrency: 1), from: Array("w".utf8), now: t0 + .milliseconds(500))
            let dispatched = sent.compactMap { if case .toWorker(_, let job) = $0 { job } else { nil } }
            #expect(dispatched.map { $0.encode() } == [messages[9]])
            // The job lifecycle (sections 5.9 to 5.11).
            let cancel = CancelMessage(clientID: [0x63], jobID: [5])
            #expect(messages[10] == cancel.encode())
            #expect(try CancelMessage.decode(messages[10]) == cancel)
            let progress = ProgressMessage(attempt: 1, clientID: [0x63], jobID: [5], completed: 3, total: 10, detail: Array("hi".utf8))
            #expect(messages[11] == progress.encode())
            #expect(try ProgressMessage.decode(messages[11]) == progress)
            let policy = try RetryPolicy(maxAttempts: 3, base: .milliseconds(50), factor: 2, cap: .seconds(1), jitter: 0.5)
            let retried = JobMessage(clientID: [0x63], jobID: [6], handler: "flaky", deadline: 0, attempt: 1, payload: Array("2".utf8),
                                     retry: RetryOverride(policy))
            #expect(messages[12] == retried.encode())
            #expect(try JobMessage.decode(messages[12]) == retried)
            let retry = ResultMessage(status: .retry, attempt: 1, clientID: [0x63], jobID: [6],
                                      body: RetryAnswer(delay: .milliseconds(100), message: Array("no".utf8)).encode())
            #expect(messages[13] == retry.encode())
            #expect(RetryAnswer.decode(wireParts(messages[13])[1]) == RetryAnswer(delay: .milliseconds(100), message: Array("no".utf8)))
            // A worker's heartbeat (section 6.2).
            #expect(messages[14] == WorkerHeartbeat(held: 1).encode())
            #expect(try WorkerToBroker.decode(messages[14]) == .heartbeat(held: 1))
        }
    }
}

// MARK: - Malformed input

/// One malformed message and the reason a decoder must give for it.
struct MalformedWireCase: Sendable, CustomTestStringConvertible {
    let name: String
    let decoder: WireDecoder
    /// The message's header and body, joined when decoded.
    let parts: [[UInt8]]
    let reason: ProtocolViolation.Reason
    var testDescription: String { "\(decoder.rawValue): \(name) -> \(reason)" }
}

extension ProtocolTests {
    @Suite struct Malformed {
        static let validJob: [[UInt8]] = [Raw.job(), [0xAA]]
        static let validResult: [[UInt8]] = [Raw.result(), [0xBB]]
        static let validMembers: [[UInt8]] = [Raw.membersHeader(), Raw.membersBody(count: 1, Raw.member())]
        static let announce: [UInt8] = Raw.announce()
        static let bye: [UInt8] = Raw.bye()
        static let hello: [UInt8] = Raw.header(0x05)
        static let validJobs: [[UInt8]] = {
            var batch = JobBatchWriter(clientID: [0x63])
            batch.append(jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: [0xAA])
            batch.append(jobID: [2], handler: "echo", deadline: 0, attempt: 1, payload: [])
            return wireParts(batch.encode())
        }()
        static let validResults: [[UInt8]] = {
            var batch = ResultBatchWriter(clientID: [0x63])
            batch.append(ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [1], body: [0xBB]))
            batch.append(ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [2], body: []))
            return wireParts(batch.encode())
        }()
        /// A JOBS or RESULTS header with these fields.
        static func batchHeader(_ command: UInt8, count: UInt16, client: [UInt8] = [0x63]) -> [UInt8] {
            Raw.header(command, [UInt8(count >> 8), UInt8(count & 0xFF), 0, UInt8(client.count)] + client)
        }

        static let batchHeaders: [MalformedWireCase] = [(WireDecoder.jobs, UInt8(0x0A)), (.results, 0x0B), (.workerToSink, 0x0B), (.sinkToClient, 0x0B)].flatMap {
            (decoder, command) -> [MalformedWireCase] in
            let name = command == 0x0A ? "JOBS" : "RESULTS"
            return [
                .init(name: "\(name) of 0 entries", decoder: decoder, parts: [batchHeader(command, count: 0), []], reason: .tooMany),
                .init(name: "\(name) of 1025 entries", decoder: decoder, parts: [batchHeader(command, count: 1025), []], reason: .tooMany),
                .init(name: "\(name) of 65535 entries", decoder: decoder, parts: [batchHeader(command, count: .max), []], reason: .tooMany),
                .init(name: "\(name) with an empty client id", decoder: decoder, parts: [batchHeader(command, count: 1, client: []), []], reason: .emptyID),
                .init(name: "\(name) header without a client id", decoder: decoder, parts: [Raw.header(command, [0, 1, 0]), []], reason: .truncated),
                .init(name: "\(name) header without its count", decoder: decoder, parts: [Raw.header(command, [0]), []], reason: .truncated),
            ]
        }

        /// What the framing itself rules out: a message too short for its preamble, a header
        /// length that does not fit, and a body on a command that has none.
        static let framing: [MalformedWireCase] = {
            var cases: [MalformedWireCase] = []
            let valid: [(String, WireDecoder, [[UInt8]])] = [
                ("JOB", .job, validJob), ("RESULT", .result, validResult), ("MEMBERS", .members, validMembers),
                ("RESULT", .sinkToClient, validResult), ("MEMBERS", .sinkToClient, validMembers), ("RESULT", .workerToSink, validResult),
                ("JOBS", .jobs, validJobs), ("RESULTS", .results, validResults),
                ("ANNOUNCE", .announce, [announce, []]), ("ANNOUNCE", .workerToSink, [announce, []]), ("BYE", .bye, [bye, []]),
            ]
            for (name, decoder, parts) in valid {
                let message = parts.joinedMessage
                cases.append(.init(name: "empty \(name)", decoder: decoder, parts: [[]], reason: .truncated))
                for cut in [3, 4, 7] {
                    cases.append(.init(name: "\(name) cut to \(cut) bytes", decoder: decoder, parts: [Array(message.prefix(cut))], reason: .truncated))
                }
                func stating(_ length: UInt32) -> [[UInt8]] {
                    var header = parts[0]
                    header.replaceSubrange(4..<8, with: Raw.u32(length))
                    return [header, parts[1]]
                }
                cases.append(.init(name: "\(name) header longer than the message", decoder: decoder,
                                   parts: stating(UInt32(message.count + 1)), reason: .truncated))
                cases.append(.init(name: "\(name) header length 2^32 - 1", decoder: decoder, parts: stating(.max), reason: .truncated))
                for length: UInt32 in [0, 7] {
                    cases.append(.init(name: "\(name) header length \(length)", decoder: decoder, parts: stating(length), reason: .truncated))
                }
            }
            for (name, decoder, header) in [("ANNOUNCE", WireDecoder.announce, announce), ("ANNOUNCE", .workerToSink, announce),
                                            ("BYE", .bye, bye), ("BYE", .workerToSink, bye)] {
                cases.append(.init(name: "\(name) with a body", decoder: decoder, parts: [header, [0x01]], reason: .trailing))
            }
            return cases
        }()

        static let signatureVersionCommand: [MalformedWireCase] = {
            var cases: [MalformedWireCase] = []
            for decoder in WireDecoder.framed {
                let valid: [[UInt8]] = switch decoder {
                case .job: validJob
                case .result, .workerToSink: validResult
                case .jobs: validJobs
                case .results: validResults
                default: validMembers
                }
                func patched(_ index: Int, _ byte: UInt8) -> [[UInt8]] {
                    var frames = valid
                    frames[0][index] = byte
                    return frames
                }
                cases.append(.init(name: "first signature byte", decoder: decoder, parts: patched(0, 0x55), reason: .signature))
                cases.append(.init(name: "second signature byte", decoder: decoder, parts: patched(1, 0x6D), reason: .signature))
                cases.append(.init(name: "zero signature", decoder: decoder, parts: [[0, 0, 1, 1], [1]], reason: .signature))
                for version: UInt8 in [0x00, 0x01, 0x03, 0xFF] {
                    cases.append(.init(name: "version \(version)", decoder: decoder, parts: patched(2, version), reason: .version))
                }
                for command: UInt8 in [0x00, 0x07, 0x80, 0xFF] {
                    cases.append(.init(name: "command \(command)", decoder: decoder, parts: patched(3, command), reason: .command))
                }
            }
            return cases
        }()

        static let unexpectedCommands: [MalformedWireCase] = [
            .init(name: "MEMBERS", decoder: .job, parts: validMembers, reason: .command),
            .init(name: "RESULT", decoder: .job, parts: validResult, reason: .command),
            .init(name: "HELLO + payload", decoder: .job, parts: [hello, []], reason: .command),
            .init(name: "JOB", decoder: .result, parts: validJob, reason: .command),
            .init(name: "MEMBERS", decoder: .result, parts: validMembers, reason: .command),
            .init(name: "RESULT", decoder: .members, parts: validResult, reason: .command),
            .init(name: "JOB", decoder: .members, parts: validJob, reason: .command),
            .init(name: "JOB", decoder: .workerToSink, parts: validJob, reason: .command),
            .init(name: "HELLO", decoder: .workerToSink, parts: [hello], reason: .command),
            .init(name: "MEMBERS", decoder: .workerToSink, parts: validMembers, reason: .command),
            .init(name: "JOB", decoder: .sinkToClient, parts: validJob, reason: .command),
            .init(name: "ANNOUNCE", decoder: .sinkToClient, parts: [announce], reason: .command),
            .init(name: "BYE", decoder: .sinkToClient, parts: [bye], reason: .command),
            .init(name: "HELLO", decoder: .sinkToClient, parts: [hello], reason: .command),
        ]

        static let emptyIDs: [MalformedWireCase] = [
            .init(name: "empty client id", decoder: .job, parts: [Raw.job(client: []), []], reason: .emptyID),
            .init(name: "empty job id", decoder: .job, parts: [Raw.job(job: []), []], reason: .emptyID),
            .init(name: "empty handler name", decoder: .job, parts: [Raw.job(handler: []), []], reason: .emptyID),
            .init(name: "empty client id", decoder: .result, parts: [Raw.result(client: []), []], reason: .emptyID),
            .init(name: "empty job id", decoder: .result, parts: [Raw.result(job: []), []], reason: .emptyID),
            .init(name: "empty client id", decoder: .sinkToClient, parts: [Raw.result(client: []), []], reason: .emptyID),
            .init(name: "empty job id", decoder: .sinkToClient, parts: [Raw.result(job: []), []], reason: .emptyID),
            .init(name: "empty client id", decoder: .workerToSink, parts: [Raw.result(client: []), []], reason: .emptyID),
            .init(name: "empty worker id", decoder: .announce, parts: [Raw.announce(worker: [])], reason: .emptyID),
            .init(name: "empty endpoint", decoder: .announce, parts: [Raw.announce(endpoint: [])], reason: .emptyID),
            .init(name: "empty worker id", decoder: .workerToSink, parts: [Raw.announce(worker: [])], reason: .emptyID),
            .init(name: "empty worker id", decoder: .bye, parts: [Raw.bye(worker: [])], reason: .emptyID),
            .init(name: "BYE empty worker id", decoder: .workerToSink, parts: [Raw.bye(worker: [])], reason: .emptyID),
            .init(name: "member with empty worker id", decoder: .members,
                  parts: [Raw.membersHeader(), Raw.membersBody(count: 2, Raw.member(), Raw.member(worker: []))], reason: .emptyID),
            .init(name: "member with empty endpoint", decoder: .members,
                  parts: [Raw.membersHeader(), Raw.membersBody(count: 1, Raw.member(endpoint: []))], reason: .emptyID),
        ]

        static let invalidUTF8Sequences: [WireCase<[UInt8]>] = [
            WireCase("0xFF", [0x61, 0xFF]),
            WireCase("lone continuation byte", [0x80]),
            WireCase("overlong slash", [0xC0, 0xAF]),
            WireCase("UTF-16 surrogate", [0xED, 0xA0, 0x80]),
            WireCase("cut three-byte sequence", [0x65, 0xE2, 0x82]),
            WireCase("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
        ]

        static let invalidUTF8: [MalformedWireCase] = invalidUTF8Sequences.flatMap { named -> [MalformedWireCase] in
            let bad = named.value
            return [
                .init(name: "handler \(named.name)", decoder: .job, parts: [Raw.job(handler: bad), []], reason: .invalidUTF8),
                .init(name: "endpoint \(named.name)", decoder: .announce, parts: [Raw.announce(endpoint: bad)], reason: .invalidUTF8),
                .init(name: "endpoint \(named.name)", decoder: .workerToSink, parts: [Raw.announce(endpoint: bad)], reason: .invalidUTF8),
                .init(name: "member endpoint \(named.name)", decoder: .members,
                      parts: [Raw.membersHeader(), Raw.membersBody(count: 1, Raw.member(endpoint: bad))], reason: .invalidUTF8),
                .init(name: "member endpoint \(named.name)", decoder: .sinkToClient,
                      parts: [Raw.membersHeader(), Raw.membersBody(count: 1, Raw.member(endpoint: bad))], reason: .invalidUTF8),
            ]
        }

        static let statuses: [MalformedWireCase] = [UInt8(12), 13, 0x7F, 0xFF].flatMap { status -> [MalformedWireCase] in [
            .init(name: "status \(status)", decoder: .result, parts: [Raw.result(status: status), []], reason: .status),
            .init(name: "status \(status)", decoder: .sinkToClient, parts: [Raw.result(status: status), []], reason: .status),
        ] }

        static let memberBodies: [MalformedWireCase] = {
            let header = Raw.membersHeader()
            let three = Raw.membersBody(count: 3, Raw.member(), Raw.member(worker: [2]), Raw.member(worker: [3]))
            return [
                .init(name: "count 4097", decoder: .members, parts: [header, Raw.membersBody(count: 4097)], reason: .tooMany),
                .init(name: "count 65535", decoder: .members, parts: [header, Raw.membersBody(count: .max, Raw.member())], reason: .tooMany),
                .init(name: "count 4097", decoder: .sinkToClient, parts: [header, Raw.membersBody(count: 4097)], reason: .tooMany),
                .init(name: "one trailing byte", decoder: .members, parts: [header, three + [0]], reason: .trailing),
                .init(name: "a whole extra member", decoder: .members,
                      parts: [header, Raw.membersBody(count: 1, Raw.member(), Raw.member(worker: [2]))], reason: .trailing),
                .init(name: "trailing bytes after zero members", decoder: .members, parts: [header, Raw.membersBody(count: 0) + [1, 2]], reason: .trailing),
                .init(name: "trailing byte", decoder: .sinkToClient, parts: [header, three + [0xFF]], reason: .trailing),
                .init(name: "count 2, one member", decoder: .members, parts: [header, Raw.membersBody(count: 2, Raw.member())], reason: .truncated),
                .init(name: "count 3, no members", decoder: .members, parts: [header, Raw.membersBody(count: 3)], reason: .truncated),
                .init(name: "count 1, member without concurrency", decoder: .members,
                      parts: [header, Array(Raw.membersBody(count: 1, Raw.member()).dropLast(2))], reason: .truncated),
                .init(name: "empty body", decoder: .members, parts: [header, []], reason: .truncated),
                .init(name: "one-byte body", decoder: .members, parts: [header, [0]], reason: .truncated),
                .init(name: "header without epoch", decoder: .members, parts: [Raw.header(0x06), Raw.membersBody(count: 0)], reason: .truncated),
                .init(name: "header with half an epoch", decoder: .members,
                      parts: [Raw.header(0x06, [0, 0, 0, 0]), Raw.membersBody(count: 0)], reason: .truncated),
            ]
        }()

        @Test(arguments: framing + signatureVersionCommand + unexpectedCommands + emptyIDs + invalidUTF8 + statuses + memberBodies + batchHeaders)
        func rejected(_ malformed: MalformedWireCase) {
            let got = reason { try malformed.decoder.run(malformed.parts.joinedMessage) }
            #expect(got == malformed.reason)
        }

        /// The valid messages the cases above are variations of do decode, so each case fails for
        /// the reason it names and not for another defect of its base message.
        @Test func baseMessagesAreValid() throws {
            _ = try JobMessage.decode(Self.validJob.joinedMessage)
            _ = try ResultMessage.decode(Self.validResult.joinedMessage)
            _ = try MembersMessage.decode(Self.validMembers.joinedMessage)
            _ = try JobBatch.decode(Self.validJobs.joinedMessage)
            _ = try ResultBatch.decode(Self.validResults.joinedMessage)
            _ = try WorkerToSink.decode(Self.announce)
            _ = try WorkerToSink.decode(Self.bye)
            _ = try AnnounceMessage.decode(Raw.announce(endpoint: Array("ü".utf8)))
        }

        @Test func memberCountAtTheLimitIsAccepted() throws {
            let members = (0..<Wire.maxMembers).map { Raw.member(worker: Raw.u16(UInt16($0)), endpoint: [0x61]) }
            let body = Raw.u16(UInt16(Wire.maxMembers)) + members.joined()
            #expect(try MembersMessage.decode([Raw.membersHeader(), body].joinedMessage).members.count == Wire.maxMembers)
            // One more, with its entry present, is refused for the count alone.
            let over = Raw.u16(UInt16(Wire.maxMembers + 1)) + members.joined() + Raw.member(worker: [0xFF, 0xFF, 0xFF], endpoint: [0x61])
            expectViolation(.tooMany) { try MembersMessage.decode([Raw.membersHeader(), over].joinedMessage) }
        }
    }
}

// MARK: - Truncated headers

extension ProtocolTests {
    @Suite struct Truncation {
        /// `message` with its header cut to every shorter length: below the preamble the message
        /// is cut there; from the preamble on, the header states its new length and the body
        /// still follows, so the cut falls inside the fields.
        private static func prefixes(of message: [UInt8]) -> [(length: Int, message: [UInt8])] {
            let parts = wireParts(message)
            return (0..<parts[0].count).map { n in
                n < 8 ? (n, Array(message.prefix(n))) : (n, restated(Array(parts[0].prefix(n))) + parts[1])
            }
        }

        @Test func everyPrefixOfAJobHeaderIsTruncated() {
            let job = JobMessage(clientID: [1, 2, 3], jobID: [0, 0, 0, 0, 0, 0, 0, 9], handler: "hé", deadline: 77, attempt: 2, payload: [5])
            for (n, message) in Self.prefixes(of: job.encode()) {
                expectViolation(.truncated, "JOB header cut to \(n) bytes") { try JobMessage.decode(message) }
                expectViolation(n < 8 ? .truncated : .command, "cut to \(n)") { try WorkerToSink.decode(message) }
                expectViolation(n < 8 ? .truncated : .command, "cut to \(n)") { try SinkToClient.decode(message) }
                // Salvaging needs the whole client id and job id.
                let salvaged = JobMessage.salvageIDs(message)
                #expect((salvaged != nil) == (n >= 18 + 1 + 3 + 1 + 8), "salvage from \(n) bytes")
            }
        }

        @Test func everyPrefixOfAResultHeaderIsTruncated() throws {
            let result = ResultMessage(status: .failed, attempt: 3, clientID: [7, 7, 7, 7], jobID: [1, 2, 3], body: Array("boom".utf8))
            let clientIDEnd = 11 + 1 + result.clientID.count
            for (n, message) in Self.prefixes(of: result.encode()) {
                expectViolation(.truncated, "RESULT header cut to \(n) bytes") { try ResultMessage.decode(message) }
                expectViolation(.truncated, "cut to \(n)") { try SinkToClient.decode(message) }
                // The sink's fast path reads only up to the client id and forwards the rest as is.
                if n < clientIDEnd {
                    expectViolation(.truncated, "cut to \(n)") { try WorkerToSink.decode(message) }
                    if n >= 8 {
                        expectViolation(.truncated, "cut to \(n)") { try ResultMessage.clientID(inHeader: message, headerLength: n) }
                    }
                } else {
                    #expect(try WorkerToSink.decode(message) == .result(clientID: result.clientID, count: 1), "cut to \(n)")
                }
            }
        }

        @Test func everyPrefixOfAnAnnounceOrByeHeaderIsTruncated() {
            let announce = AnnounceMessage(workerID: Array("w-1".utf8), endpoint: "tcp://höst:1", concurrency: 3).encode()
            for (n, message) in Self.prefixes(of: announce) {
                expectViolation(.truncated, "ANNOUNCE cut to \(n) bytes") { try AnnounceMessage.decode(message) }
                expectViolation(.truncated, "ANNOUNCE cut to \(n) bytes") { try WorkerToSink.decode(message) }
            }
            let bye = ByeMessage(workerID: Array("w-1".utf8)).encode()
            for (n, message) in Self.prefixes(of: bye) {
                expectViolation(.truncated, "BYE cut to \(n) bytes") { try ByeMessage.decode(message) }
                expectViolation(.truncated, "BYE cut to \(n) bytes") { try WorkerToSink.decode(message) }
            }
        }

        @Test func everyPrefixOfAMembersHeaderOrBodyIsTruncated() {
            let members = MembersMessage(epoch: 5, members: [
                .init(workerID: [1], endpoint: "tcp://a:1", concurrency: 2),
                .init(workerID: [2, 2], endpoint: "tcp://b:2", concurrency: 3),
            ]).encode()
            // The flags byte after the epoch is optional (a sink from before it sends none).
            for (n, message) in Self.prefixes(of: members) where n < 16 {
                expectViolation(.truncated, "MEMBERS header cut to \(n) bytes") { try MembersMessage.decode(message) }
                expectViolation(.truncated, "MEMBERS header cut to \(n) bytes") { try SinkToClient.decode(message) }
            }
            let parts = wireParts(members)
            for n in 0..<parts[1].count {
                let message = parts[0] + Array(parts[1].prefix(n))
                expectViolation(.truncated, "MEMBERS body cut to \(n) bytes") { try MembersMessage.decode(message) }
            }
        }

        /// A length byte that claims more than the header holds is truncation, not a crash, and
        /// never reads on into the body that follows.
        @Test(arguments: [UInt8(2), 3, 100, 255])
        func lengthBeyondTheHeader(_ length: UInt8) {
            let body = [UInt8](repeating: 0x61, count: 300)
            let header = Raw.header(0x01, Raw.u64(0), Raw.u16(1), [1, 0x63], [2, 0, 1], [length] + Array("a".utf8))
            expectViolation(.truncated) { try JobMessage.decode(header + body) }
            let result = Raw.header(0x02, [0], Raw.u16(1), [length, 0x63])
            expectViolation(.truncated) { try ResultMessage.decode(result + body) }
            expectViolation(.truncated) { try WorkerToSink.decode(result + body) }
            expectViolation(.truncated) { try ResultMessage.clientID(inHeader: result + body, headerLength: result.count) }
        }
    }
}

// MARK: - Extension bytes (section 3)

extension ProtocolTests {
    @Suite struct Extensions {
        static let extensions: [WireCase<[UInt8]>] = [
            WireCase("one byte", [0x00]),
            WireCase("a field-like tail", [0x03, 0x61, 0x62, 0x63, 0xFF, 0xFF]),
            WireCase("300 bytes", Array(repeating: 0xEE, count: 300)),
        ]

        /// `message` with `tail` after its header's fields, the header's length grown to match.
        static func extended(_ message: [UInt8], _ tail: [UInt8]) -> [UInt8] {
            let parts = wireParts(message)
            return restated(parts[0] + tail) + parts[1]
        }

        @Test(arguments: extensions)
        func headersIgnoreTrailingBytes(_ named: WireCase<[UInt8]>) throws {
            let tail = named.value

            // Tails go after the last field this revision defines (for JOB its dispatch
            // options, for ANNOUNCE its capabilities, for MEMBERS its capability table).
            let job = JobMessage(clientID: [1], jobID: [2], handler: "echo", deadline: 9, attempt: 1, payload: [3],
                                 options: DispatchOptions(priority: 7, requires: ["gpu"]))
            let jobMessage = Self.extended(job.encode(), tail)
            #expect(try JobMessage.decode(jobMessage) == job)
            #expect(JobMessage.salvageIDs(jobMessage)?.jobID == [2])

            let result = ResultMessage(status: .rejected, attempt: 1, clientID: [1], jobID: [2], body: Array("no".utf8))
            let resultMessage = Self.extended(result.encode(), tail)
            #expect(try ResultMessage.decode(resultMessage) == result)
            #expect(try SinkToClient.decode(resultMessage) == .result(result))
            #expect(try WorkerToSink.decode(resultMessage) == .result(clientID: [1], count: 1))
            #expect(try ResultMessage.clientID(inHeader: resultMessage, headerLength: wireParts(resultMessage)[0].count) == [1])

            let announce = AnnounceMessage(workerID: [4], endpoint: "tcp://x:1", concurrency: 2,
                                           capabilities: Capabilities(handlers: ["echo"], labels: ["gpu"]))
            let announceMessage = Self.extended(announce.encode(), tail)
            #expect(try AnnounceMessage.decode(announceMessage) == announce)
            #expect(try WorkerToSink.decode(announceMessage) == .announce(announce))

            let bye = ByeMessage(workerID: [4])
            let byeMessage = Self.extended(bye.encode(), tail)
            #expect(try ByeMessage.decode(byeMessage) == bye)
            #expect(try WorkerToSink.decode(byeMessage) == .bye(bye))

            // The MEMBERS header may grow too; only its body is closed.
            let members = MembersMessage(epoch: 3, members: [.init(workerID: [4], endpoint: "tcp://x:1", concurrency: 2,
                                                                   capabilities: Capabilities(handlers: ["echo"], labels: []))])
            let memberMessage = Self.extended(members.encode(), tail)
            #expect(try MembersMessage.decode(memberMessage) == members)
            #expect(try SinkToClient.decode(memberMessage) == .members(members))

            #expect(try ByteReader.command(of: Self.extended(HelloMessage().encode(), tail)) == .hello)
        }
    }
}

// MARK: - Salvaging ids and the sink's fast path

extension ProtocolTests {
    @Suite struct Salvage {
        @Test(arguments: Malformed.invalidUTF8Sequences)
        func idsOfAJobWithAnInvalidHandlerName(_ named: WireCase<[UInt8]>) throws {
            let message = Raw.job(client: [0xC1, 0x00], job: [0, 0, 0, 0, 0, 0, 0, 42], handler: named.value) + [1, 2]
            expectViolation(.invalidUTF8) { try JobMessage.decode(message) }
            let ids = try #require(JobMessage.salvageIDs(message))
            #expect(ids.clientID == [0xC1, 0x00])
            #expect(ids.jobID == [0, 0, 0, 0, 0, 0, 0, 42])
        }

        @Test func idsOfAJobWithOtherDamageAfterTheIDs() throws {
            // No handler name at all, an empty one, and one cut short (with a payload after it).
            let damaged: [[UInt8]] = [
                Raw.header(0x01, Raw.u64(0), Raw.u16(1), Raw.short([5]), Raw.short([6])),
                Raw.job(client: [5], job: [6], handler: []),
                Raw.header(0x01, Raw.u64(0), Raw.u16(1), Raw.short([5]), Raw.short([6]), [9, 0x61]) + [0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69],
            ]
            for message in damaged {
                #expect(throws: ProtocolViolation.self) { try JobMessage.decode(message) }
                let ids = try #require(JobMessage.salvageIDs(message))
                #expect(ids.clientID == [5])
                #expect(ids.jobID == [6])
            }
        }

        static let garbage: [WireCase<[UInt8]>] = [
            WireCase("an empty message", []),
            WireCase("three bytes", [0x54, 0x4D, 0x02]),
            WireCase("bad signature", [0x54, 0x4E] + Array(Raw.job().dropFirst(2))),
            WireCase("bad version", [0x54, 0x4D, 0x01] + Array(Raw.job().dropFirst(3))),
            WireCase("a RESULT", Raw.result()),
            WireCase("a MEMBERS", Raw.membersHeader() + Raw.membersBody(count: 0)),
            WireCase("a JOB header of 18 bytes", restated(Array(Raw.job().prefix(18)))),
            WireCase("a JOB cut inside its job id", restated(Array(Raw.job(client: [1], job: [1, 2, 3]).prefix(22))) + [2, 3, 4, 5]),
            WireCase("a JOB whose header length is past its end", Array(Raw.job().dropLast())),
            WireCase("an empty client id", Raw.job(client: [])),
            WireCase("an empty job id", Raw.job(job: [])),
            WireCase("random bytes", [0x13, 0x37, 0xC0, 0xFF, 0xEE, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A]),
        ]

        @Test(arguments: garbage)
        func nothingToSalvage(_ named: WireCase<[UInt8]>) {
            #expect(JobMessage.salvageIDs(named.value) == nil)
        }

        @Test(arguments: ResultStatus.allCases)
        func clientIDInHeaderAgreesWithTheFullDecoder(_ status: ResultStatus) throws {
            for clientID in [[UInt8(0)], [0x63], Array("client-ü".utf8), binaryID255] {
                for jobID in [[UInt8(1)], binaryID255] {
                    let message = ResultMessage(status: status, attempt: 5, clientID: clientID, jobID: jobID, body: [1]).encode()
                    let fast = try ResultMessage.clientID(inHeader: message, headerLength: wireParts(message)[0].count)
                    #expect(fast == clientID)
                    #expect(fast == (try ResultMessage.decode(message)).clientID)
                }
            }
        }
    }
}

// MARK: - Fuzzing


extension ProtocolTests {
    @Suite struct Fuzz {
        /// Valid encodings of every message, the seeds of the mutations.
        static let seeds: [[UInt8]] = [
            JobMessage(clientID: [0x63], jobID: [0, 0, 0, 0, 0, 0, 0, 1], handler: "echo", deadline: 0, attempt: 1, payload: Array("hi".utf8)).encode(),
            JobMessage(clientID: Array(repeating: 0xC3, count: 20), jobID: [9], handler: "héllo-日本", deadline: .max, attempt: 7, payload: []).encode(),
            ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [1], body: Array("hi".utf8)).encode(),
            ResultMessage(status: .declined, attempt: 2, clientID: [1, 2, 3], jobID: [4, 5], body: []).encode(),
            AnnounceMessage(workerID: Array("host-1-ab".utf8), endpoint: "tcp://127.0.0.1:5555", concurrency: 4).encode(),
            ByeMessage(workerID: Array("host-1-ab".utf8)).encode(),
            HelloMessage().encode(),
            MembersMessage(epoch: 99, members: []).encode(),
            MembersMessage(epoch: 12, members: [
                .init(workerID: [1], endpoint: "tcp://a:1", concurrency: 1),
                .init(workerID: [2, 2], endpoint: "ipc:///tmp/ü", concurrency: 300),
                .init(workerID: [3], endpoint: "inproc://c", concurrency: 0),
            ]).encode(),
            {
                var batch = JobBatchWriter(clientID: [0x63])
                batch.append(jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: Array("hi".utf8))
                batch.append(jobID: [2, 2], handler: "héllo", deadline: .max, attempt: 3, payload: [])
                return batch.encode()
            }(),
            {
                var batch = ResultBatchWriter(clientID: [1, 2, 3])
                batch.append(ResultMessage(status: .ok, attempt: 1, clientID: [1, 2, 3], jobID: [1], body: Array("hi".utf8)))
                batch.append(ResultMessage(status: .failed, attempt: 2, clientID: [1, 2, 3], jobID: [9, 9], body: Array("no".utf8)))
                return batch.encode()
            }(),
        ]

        /// Tallies what the decoders did, to check the fuzzer reached deep into every one.
        struct Tally {
            var accepted: [WireDecoder: Int] = [:]
            var reasons: Set<String> = []
            var failures: [String] = []

            mutating func fail(_ message: String) {
                if failures.count < 20 { failures.append(message) }
            }
        }

        @Test func randomAndMutatedMessagesNeverCrashAnyDecoder() async {
            var rng = SplitMix64(seed: 0x7A5C_4D65_5348_0002)
            var tally = Tally()
            let iterations = 20_000
            for iteration in 0..<iterations {
                await yieldingNowAndThen(iteration)
                let message: [UInt8]
                switch rng.below(10) {
                case 0, 1: message = Self.randomMessage(&rng, validStart: false)
                case 2, 3: message = Self.randomMessage(&rng, validStart: true)
                default: message = Self.mutate(Self.seeds[rng.below(Self.seeds.count)], &rng)
                }
                Self.check(message, iteration: iteration, &tally)
            }
            #expect(tally.failures.isEmpty, "\(tally.failures.joined(separator: "\n"))")
            // The fuzzer must get past the framing into every decoder, and provoke every reason.
            for decoder in WireDecoder.allCases {
                #expect(tally.accepted[decoder, default: 0] >= 50, "\(decoder) accepted only \(tally.accepted[decoder, default: 0]) inputs")
            }
            let reasons: [ProtocolViolation.Reason] = [.signature, .version, .command, .truncated, .emptyID,
                                                       .invalidUTF8, .status, .trailing, .tooMany]
            for reason in reasons {
                #expect(tally.reasons.contains(reason.rawValue), "the fuzzer never provoked \(reason)")
            }
        }

        @Test func unmodifiedSeedsDecode() {
            var tally = Tally()
            for (index, seed) in Self.seeds.enumerated() {
                Self.check(seed, iteration: index, &tally)
            }
            #expect(tally.failures.isEmpty, "\(tally.failures)")
            #expect(tally.accepted[.job] == 2)
            #expect(tally.accepted[.result] == 2)
            #expect(tally.accepted[.members] == 2)
            #expect(tally.accepted[.workerToSink] == 5)  // 2 RESULT, RESULTS, ANNOUNCE, BYE
            #expect(tally.accepted[.sinkToClient] == 5)  // 2 RESULT, RESULTS, 2 MEMBERS
            #expect(tally.accepted[.jobs] == 1)
            #expect(tally.accepted[.results] == 1)
        }

        /// A batch header as its sender meant it: the reserved byte is ignored on receipt.
        static func reservedCleared(_ header: [UInt8]) -> [UInt8] {
            var cleared = header
            if cleared.count > Batch.headerFixedSize - 1 { cleared[Batch.headerFixedSize - 1] = 0 }
            return cleared
        }

        fileprivate static func randomMessage(_ rng: inout SplitMix64, validStart: Bool) -> [UInt8] {
            let body = rng.bytes(rng.chance(5) ? rng.below(600) : rng.below(40))
            guard validStart else { return body }
            // Signature, version and a command (sometimes an unknown one), then a run of plausible
            // fields: short strings with small lengths and big-endian numbers.
            var fields: [UInt8] = []
            for _ in 0..<rng.below(8) {
                switch rng.below(4) {
                case 0: fields += rng.bytes(rng.below(9))
                case 1:
                    let text = (0..<rng.below(12)).map { _ in UInt8(0x61 + rng.below(26)) }
                    fields += [UInt8(text.count)] + text
                case 2: fields += [UInt8(rng.below(4))]
                default:
                    let raw = rng.bytes(rng.below(6))
                    fields += [UInt8(raw.count)] + raw
                }
            }
            let header = Raw.header(UInt8(rng.below(14)), fields)
            // A body that begins with a small member count, half the time.
            return header + (rng.chance(50) ? [0, UInt8(rng.below(4))] + body : body)
        }

        fileprivate static func mutate(_ seed: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
            var message = seed
            for _ in 0..<(1 + rng.below(3)) {
                switch rng.below(9) {
                case 0, 1, 2:  // flip one bit
                    if !message.isEmpty {
                        let i = rng.below(message.count)
                        message[i] ^= UInt8(1) << UInt8(rng.below(8))
                    }
                case 3:  // truncate
                    message = Array(message.prefix(rng.below(message.count + 1)))
                case 4:  // append bytes
                    message += rng.bytes(1 + rng.below(8))
                case 5:  // overwrite a byte with an interesting value
                    if !message.isEmpty {
                        let values: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x10, 0x11]
                        message[rng.below(message.count)] = values[rng.below(values.count)]
                    }
                case 6:  // move the boundary between header and body
                    if message.count >= 8 {
                        let parts = wireParts(message)
                        let length = max(0, parts[0].count + rng.below(9) - 4)
                        message.replaceSubrange(4..<8, with: Raw.u32(UInt32(length)))
                    }
                case 7:  // grow the header: bytes inserted at its end, its length restated
                    if message.count >= 8 {
                        let parts = wireParts(message)
                        message = restated(parts[0] + rng.bytes(1 + rng.below(6))) + parts[1]
                    }
                default:  // change the command
                    if message.count >= 4 { message[3] = UInt8(rng.below(14)) }
                }
            }
            return message
        }

        /// Runs every decoder on `message` and checks what each accepted against the others and
        /// against re-encoding. Decoders throw only `ProtocolViolation` (typed throws); a crash
        /// would end the test process.
        static func check(_ message: [UInt8], iteration: Int, _ tally: inout Tally) {
            func rejected(_ violation: ProtocolViolation) { tally.reasons.insert(violation.reason.rawValue) }
            let parts = wireParts(message)
            let header = parts[0], body = parts[1]
            let at = "iteration \(iteration), message \(message)"

            do {
                let job = try JobMessage.decode(message)
                tally.accepted[.job, default: 0] += 1
                let again = wireParts(job.encode())
                if !header.dropFirst(8).starts(with: again[0].dropFirst(8)) || again[1] != body {
                    tally.fail("JOB does not re-encode to its input: \(at)")
                }
                if job.clientID.isEmpty || job.jobID.isEmpty || job.handler.isEmpty {
                    tally.fail("JOB with an empty field: \(at)")
                }
                if let ids = JobMessage.salvageIDs(message) {
                    if ids.clientID != job.clientID || ids.jobID != job.jobID { tally.fail("salvageIDs disagrees: \(at)") }
                } else {
                    tally.fail("salvageIDs failed on a valid JOB: \(at)")
                }
            } catch { rejected(error) }

            do {
                let result = try ResultMessage.decode(message)
                tally.accepted[.result, default: 0] += 1
                let again = wireParts(result.encode())
                if !header.dropFirst(8).starts(with: again[0].dropFirst(8)) || again[1] != body {
                    tally.fail("RESULT does not re-encode to its input: \(at)")
                }
                if (try? ResultMessage.clientID(inHeader: message, headerLength: header.count)) != result.clientID {
                    tally.fail("clientID(inHeader:) disagrees with decode: \(at)")
                }
                if (try? WorkerToSink.decode(message)) != .result(clientID: result.clientID, count: 1) {
                    tally.fail("WorkerToSink refuses a valid RESULT: \(at)")
                }
                if (try? SinkToClient.decode(message)) != .result(result) {
                    tally.fail("SinkToClient disagrees with ResultMessage.decode: \(at)")
                }
            } catch { rejected(error) }

            do {
                let members = try MembersMessage.decode(message)
                tally.accepted[.members, default: 0] += 1
                // Its flags byte and capability table are normalised on encoding (unknown flag
                // bits dropped, an all-unknown table left out), so compare what they mean.
                let encoded = members.encode()
                let again = wireParts(encoded)
                if members.members.count > Wire.maxMembers || (try? MembersMessage.decode(encoded)) != members
                    || !header.dropFirst(8).starts(with: again[0].prefix(16).dropFirst(8)) || (!members.unchanged && again[1] != body) {
                    tally.fail("MEMBERS does not re-encode to its input: \(at)")
                }
                if (try? SinkToClient.decode(message)) != .members(members) {
                    tally.fail("SinkToClient disagrees with MembersMessage.decode: \(at)")
                }
            } catch { rejected(error) }

            do {
                let routed = try WorkerToSink.decode(message)
                tally.accepted[.workerToSink, default: 0] += 1
                switch routed {
                case .result(let clientID, let count):
                    if (try? ResultMessage.clientID(inHeader: message, headerLength: header.count)) != clientID
                        || count != Batch.resultCount(inHeader: message) || !(1...Wire.maxBatchEntries).contains(count) {
                        tally.fail("WorkerToSink RESULT: \(at)")
                    }
                case .progress(let clientID):
                    if (try? ResultMessage.clientID(inHeader: message, headerLength: header.count)) != clientID {
                        tally.fail("WorkerToSink PROGRESS: \(at)")
                    }
                case .announce(let announce):
                    if !body.isEmpty || (try? AnnounceMessage.decode(message)) != announce || (try? ByteReader.command(of: message)) != .announce {
                        tally.fail("WorkerToSink ANNOUNCE: \(at)")
                    }
                case .bye(let bye):
                    if !body.isEmpty || (try? ByeMessage.decode(message)) != bye || (try? ByteReader.command(of: message)) != .bye {
                        tally.fail("WorkerToSink BYE: \(at)")
                    }
                }
                // What routes on a prefix routes the same from the whole message.
                let fromPrefix = try? WorkerToSink.decode(prefix: Array(message.prefix(WorkerToSink.routingPrefix)), count: message.count,
                                                          whole: { message })
                if fromPrefix != routed { tally.fail("WorkerToSink from a prefix disagrees: \(at)") }
            } catch { rejected(error) }

            do {
                let received = try SinkToClient.decode(message)
                tally.accepted[.sinkToClient, default: 0] += 1
                if case .members(let members) = received, (try? MembersMessage.decode(message)) != members {
                    tally.fail("SinkToClient MEMBERS: \(at)")
                }
            } catch { rejected(error) }

            do {
                let announce = try AnnounceMessage.decode(message)
                tally.accepted[.announce, default: 0] += 1
                if announce.workerID.isEmpty || announce.endpoint.isEmpty || !body.isEmpty
                    || !header.dropFirst(8).starts(with: announce.encode().dropFirst(8)) {
                    tally.fail("ANNOUNCE does not re-encode to its input: \(at)")
                }
            } catch { rejected(error) }

            do {
                let bye = try ByeMessage.decode(message)
                tally.accepted[.bye, default: 0] += 1
                if bye.workerID.isEmpty || !body.isEmpty || !header.dropFirst(8).starts(with: bye.encode().dropFirst(8)) {
                    tally.fail("BYE does not re-encode to its input: \(at)")
                }
            } catch { rejected(error) }

            do {
                let batch = try JobBatch.decode(message)
                var jobs: [JobMessage] = []
                do throws(DamagedEntry) {
                    try batch.forEach { jobs.append($0) }
                    tally.accepted[.jobs, default: 0] += 1
                    var again = JobBatchWriter(clientID: batch.clientID)
                    for job in jobs { again.append(jobID: job.jobID, handler: job.handler, deadline: job.deadline, attempt: job.attempt, payload: job.payload) }
                    let encoded = wireParts(again.encode())
                    if jobs.count != batch.count || !Self.reservedCleared(header).dropFirst(8).starts(with: encoded[0].dropFirst(8)) || encoded[1] != body {
                        tally.fail("JOBS does not re-encode to its input: \(at)")
                    }
                } catch {
                    rejected(error.violation)
                    if jobs.count >= batch.count && error.violation.reason != .trailing { tally.fail("JOBS damaged after its last entry: \(at)") }
                }
                if jobs.contains(where: { $0.clientID != batch.clientID || $0.jobID.isEmpty || $0.handler.isEmpty }) {
                    tally.fail("JOBS entry with a wrong or empty field: \(at)")
                }
            } catch { rejected(error) }

            do {
                let batch = try ResultBatch.decode(message)
                var results: [ResultMessage] = []
                do throws(DamagedEntry) {
                    try batch.forEach { results.append($0) }
                    tally.accepted[.results, default: 0] += 1
                    var again = ResultBatchWriter(clientID: batch.clientID)
                    for result in results { again.append(result) }
                    let encoded = wireParts(again.encode())
                    if results.count != batch.count || !Self.reservedCleared(header).dropFirst(8).starts(with: encoded[0].dropFirst(8)) || encoded[1] != body {
                        tally.fail("RESULTS does not re-encode to its input: \(at)")
                    }
                    if (try? WorkerToSink.decode(message)) != .result(clientID: batch.clientID, count: batch.count) {
                        tally.fail("WorkerToSink refuses a valid RESULTS: \(at)")
                    }
                } catch {
                    rejected(error.violation)
                }
            } catch { rejected(error) }

            _ = JobMessage.salvageIDs(message)
            _ = try? ResultMessage.clientID(inHeader: message, headerLength: header.count)
        }
    }
}

// MARK: - The sink reads whole worker headers

extension ProtocolTests {
    /// The sink routes a worker message from its first `WorkerToSink.routingPrefix` bytes
    /// (Sink/SinkLoop.swift, `handleWorkerMessage`): enough for a RESULT's client id, but an
    /// ANNOUNCE may be far longer, and is read whole. An in-process sink on inproc endpoints
    /// receives hand-made ANNOUNCEs through a PUSH socket, as a worker would send them.
    @Suite struct SinkHeaderCap {
        @Test(.timeLimit(.minutes(1)))
        func longValidAnnounceRegistersTheWorker() async throws {
            var topology = Topology.local
            topology.heartbeat = .init(interval: .milliseconds(20), liveness: 500)  // publishes often, expires nobody
            let context = try Context()
            let sink = try Sink(topology: topology, context: MeshContext(context))
            try await sink.start()
            let results = try #require(sink.endpoints?.results)
            let push = try Socket(context, .push)
            try push.set(.linger, .zero)
            try push.connect(results)

            // A short ANNOUNCE first: the sink is up and counts workers.
            let short = AnnounceMessage(workerID: Array("short".utf8), endpoint: "tcp://a:1", concurrency: 1)
            try push.send(short.encode())
            try await eventually("the short ANNOUNCE registers") { sink.stats.liveWorkers == 1 }

            // Valid by section 3: a 200-byte worker id, a 121-byte endpoint and no key: 334 bytes.
            let long = AnnounceMessage(workerID: Array(repeating: 0x77, count: 200),
                                       endpoint: "tcp://" + String(repeating: "h", count: 110) + ":5555", concurrency: 2)
            let message = long.encode()
            let expectedLength: Int = 8 + 2 + 201 + 122 + 1
            #expect(message.count == expectedLength)
            #expect(message.count > WorkerToSink.routingPrefix)
            #expect(try WorkerToSink.decode(message) == .announce(long))
            try push.send(message)
            // Wait until the sink either registered the worker or counted the message as malformed.
            try await eventually("the sink handles the long ANNOUNCE") {
                sink.stats.liveWorkers == 2 || sink.stats.malformed > 0
            }
            #expect(sink.stats.liveWorkers == 2)
            #expect(sink.stats.malformed == 0)
            push.close()
            await sink.stop()
        }
    }
}
