import Foundation
import Testing
@testable import TaskMesh
import ZMQ

// Codec tests for TMP/1 (docs/PROTOCOL.md): round trips, the exact bytes of the spec's example,
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

    /// A header: signature, version 1, `command`, then `fields` in order.
    static func header(_ command: UInt8, _ fields: [UInt8]...) -> [UInt8] {
        [0x54, 0x4D, 0x01, command] + fields.joined()
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

/// Every decoder of the protocol, run on frames; the header-only decoders get the first frame.
enum WireDecoder: String, CaseIterable, Sendable {
    case job, result, members, workerToSink, sinkToClient, announce, bye, jobs, results

    func run(_ frames: [[UInt8]]) throws(ProtocolViolation) {
        switch self {
        case .job: _ = try JobMessage.decode(frames)
        case .result: _ = try ResultMessage.decode(frames)
        case .members: _ = try MembersMessage.decode(frames)
        case .workerToSink: _ = try WorkerToSink.decode(frames)
        case .sinkToClient: _ = try SinkToClient.decode(frames)
        case .announce: _ = try AnnounceMessage.decode(header: frames.first ?? [])
        case .bye: _ = try ByeMessage.decode(header: frames.first ?? [])
        case .jobs: _ = try JobBatch.decode(frames)
        case .results: _ = try ResultBatch.decode(frames)
        }
    }

    /// The decoders that check the signature, version and command themselves.
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
            let frames = job.encode()
            try #require(frames.count == 2)
            #expect(frames[0].count == 14 + 1 + job.clientID.count + 1 + job.jobID.count + 1 + job.handler.utf8.count)
            #expect(Array(frames[0].prefix(4)) == [0x54, 0x4D, 0x01, 0x01])
            #expect(frames[1] == job.payload)
            #expect(try JobMessage.decode(frames) == job)
            let ids = try #require(JobMessage.salvageIDs(frames))
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
                let frames = result.encode()
                try #require(frames.count == 2)
                #expect(frames[0].count == 7 + 1 + result.clientID.count + 1 + result.jobID.count)
                #expect(frames[0][4] == status.rawValue)
                #expect(frames[1] == result.body)
                #expect(try ResultMessage.decode(frames) == result)
                #expect(try SinkToClient.decode(frames) == .result(result))
                #expect(try WorkerToSink.decode(frames) == .result(clientID: result.clientID, count: 1))
                #expect(try ResultMessage.clientID(inHeader: frames[0]) == result.clientID)
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
            let frames = announce.encode()
            try #require(frames.count == 1)
            #expect(frames[0].count == 6 + 1 + announce.workerID.count + 1 + announce.endpoint.utf8.count + 1 + announce.publicKey.count)
            #expect(try ByteReader.command(of: frames[0]) == .announce)
            #expect(try AnnounceMessage.decode(header: frames[0]) == announce)
            #expect(try WorkerToSink.decode(frames) == .announce(announce))
        }

        @Test(arguments: [[UInt8(1)], [0x00], Array("host-1-x".utf8), binaryID255])
        func bye(_ workerID: [UInt8]) throws {
            let bye = ByeMessage(workerID: workerID)
            let frames = bye.encode()
            #expect(frames == [Raw.bye(worker: workerID)])
            #expect(try ByeMessage.decode(header: frames[0]) == bye)
            #expect(try WorkerToSink.decode(frames) == .bye(bye))
        }

        @Test func hello() throws {
            let frames = HelloMessage().encode()
            #expect(frames == [[0x54, 0x4D, 0x01, 0x05]])
            #expect(try ByteReader.command(of: frames[0]) == .hello)
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
            let frames = members.encode()
            try #require(frames.count == 2)
            #expect(frames[0] == Raw.membersHeader(epoch: members.epoch))
            let bodyLength = 2 + members.members.reduce(0) { $0 + 1 + $1.workerID.count + 1 + $1.endpoint.utf8.count + 2 + 1 + $1.publicKey.count }
            #expect(frames[1].count == bodyLength)
            #expect(Array(frames[1].prefix(2)) == Raw.u16(UInt16(members.members.count)))
            #expect(try MembersMessage.decode(frames) == members)
            #expect(try SinkToClient.decode(frames) == .members(members))
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

        static let jobFrames: [[UInt8]] = [
            [0x54, 0x4D, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x63,
             0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x65, 0x63, 0x68, 0x6F],
            [0x68, 0x69],
        ]
        static let resultFrames: [[UInt8]] = [
            [0x54, 0x4D, 0x01, 0x02, 0x00, 0x00, 0x01, 0x01, 0x63, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
            [0x68, 0x69],
        ]

        @Test func jobEncodesToTheExampleBytes() throws {
            #expect(Self.job.encode() == Self.jobFrames)
            #expect(try JobMessage.decode(Self.jobFrames) == Self.job)
        }

        @Test func resultEncodesToTheExampleBytes() throws {
            #expect(Self.result.encode() == Self.resultFrames)
            #expect(try ResultMessage.decode(Self.resultFrames) == Self.result)
            #expect(try WorkerToSink.decode(Self.resultFrames) == .result(clientID: [0x63], count: 1))
        }

        /// Reads the hex dumps of section 9 from the document itself, so the document, these tests
        /// and the codec cannot drift apart.
        @Test func documentShowsTheseBytes() throws {
            let text = try RepositoryFiles.text("docs/PROTOCOL.md")
            let section = try #require(text.range(of: "## 9. Example"))
            var frames: [[UInt8]] = []
            func bytes(_ text: Substring) throws -> [UInt8] {
                try text.split(separator: " ").map { token in try #require(UInt8(token, radix: 16)) }
            }
            var inDump = false
            for line in text[section.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("frame ") {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    try #require(parts.count == 2)
                    frames.append(try bytes(parts[1]))
                    inDump = true
                } else if inDump && line.hasPrefix("         ") {  // a frame continued on the next line
                    frames[frames.count - 1] += try bytes(line)
                } else {
                    inDump = false
                }
            }
            try #require(frames.count == 26)
            #expect(Array(frames[0...1]) == Self.jobFrames)
            #expect(Array(frames[2...3]) == Self.resultFrames)
            var jobs = JobBatchWriter(clientID: [0x63])
            jobs.append(jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: Array("hi".utf8))
            jobs.append(jobID: [2], handler: "echo", deadline: 0, attempt: 1, payload: [])
            #expect(Array(frames[4...5]) == jobs.encode())
            var results = ResultBatchWriter(clientID: [0x63])
            results.append(ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [1], body: Array("hi".utf8)))
            results.append(ResultMessage(status: .failed, attempt: 1, clientID: [0x63], jobID: [2], body: Array("no".utf8)))
            #expect(Array(frames[6...7]) == results.encode())
            // Capabilities and routing (section 5.8).
            let capabilities = Capabilities(handlers: ["sha256", "echo"], labels: ["gpu"])
            let announce = AnnounceMessage(workerID: Array("w".utf8), endpoint: "tcp://h:1", concurrency: 4, capabilities: capabilities)
            #expect([frames[8]] == announce.encode())
            #expect(try AnnounceMessage.decode(header: frames[8]) == announce)
            let members = MembersMessage(epoch: 9, members: [.init(workerID: Array("w".utf8), endpoint: "tcp://h:1", concurrency: 4,
                                                                   capabilities: capabilities)])
            #expect(Array(frames[9...10]) == members.encode())
            #expect(try MembersMessage.decode(Array(frames[9...10])) == members)
            #expect(Array(frames[11...12]) == MembersMessage(epoch: 9, members: [], unchanged: true).encode())
            let routed = JobMessage(clientID: [0x63], jobID: [3], handler: "sha256", deadline: 0, attempt: 1, payload: Array("hi".utf8),
                                    options: DispatchOptions(priority: 7, requires: ["gpu"]))
            #expect(Array(frames[13...14]) == routed.encode())
            #expect(try JobMessage.decode(Array(frames[13...14])) == routed)
            // Deadlines (section 4): the client's JOB with 2 s left, and the broker's dispatch of
            // it after 500 ms in its queue.
            let timed = JobMessage(clientID: [0x63], jobID: [4], handler: "echo", deadline: WireDeadline.relative(.seconds(2)), attempt: 1,
                                   payload: Array("hi".utf8))
            #expect(Array(frames[15...16]) == timed.encode())
            #expect(try JobMessage.decode(Array(frames[15...16])) == timed)
            var broker = BrokerState(config: .loopback(port: 5831), expiry: .seconds(60))
            let t0 = Instant.current
            _ = broker.submit(try JobMessage.decode(Array(frames[15...16])), from: [0x63], now: t0)
            let sent = broker.ready(ReadyMessage(workerID: Array("w".utf8), concurrency: 1), from: Array("w".utf8), now: t0 + .milliseconds(500))
            let dispatched = sent.compactMap { if case .toWorker(_, let job) = $0 { job } else { nil } }
            #expect(dispatched.map { $0.encode() } == [Array(frames[17...18])])
            // The job lifecycle (sections 5.9 to 5.11).
            let cancel = CancelMessage(clientID: [0x63], jobID: [5])
            #expect([frames[19]] == cancel.encode())
            #expect(try CancelMessage.decode([frames[19]]) == cancel)
            let progress = ProgressMessage(attempt: 1, clientID: [0x63], jobID: [5], completed: 3, total: 10, detail: Array("hi".utf8))
            #expect(Array(frames[20...21]) == progress.encode())
            #expect(try ProgressMessage.decode(Array(frames[20...21])) == progress)
            let policy = try RetryPolicy(maxAttempts: 3, base: .milliseconds(50), factor: 2, cap: .seconds(1), jitter: 0.5)
            let retried = JobMessage(clientID: [0x63], jobID: [6], handler: "flaky", deadline: 0, attempt: 1, payload: Array("2".utf8),
                                     retry: RetryOverride(policy))
            #expect(Array(frames[22...23]) == retried.encode())
            #expect(try JobMessage.decode(Array(frames[22...23])) == retried)
            let retry = ResultMessage(status: .retry, attempt: 1, clientID: [0x63], jobID: [6],
                                      body: RetryAnswer(delay: .milliseconds(100), message: Array("no".utf8)).encode())
            #expect(Array(frames[24...25]) == retry.encode())
            #expect(RetryAnswer.decode(frames[25]) == RetryAnswer(delay: .milliseconds(100), message: Array("no".utf8)))
        }
    }
}

// MARK: - Malformed input

/// One malformed message and the reason a decoder must give for it.
struct MalformedWireCase: Sendable, CustomTestStringConvertible {
    let name: String
    let decoder: WireDecoder
    let frames: [[UInt8]]
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
            return batch.encode()
        }()
        static let validResults: [[UInt8]] = {
            var batch = ResultBatchWriter(clientID: [0x63])
            batch.append(ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [1], body: [0xBB]))
            batch.append(ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [2], body: []))
            return batch.encode()
        }()
        /// A JOBS or RESULTS header with these fields.
        static func batchHeader(_ command: UInt8, count: UInt16, client: [UInt8] = [0x63]) -> [UInt8] {
            Raw.header(command, [UInt8(count >> 8), UInt8(count & 0xFF), 0, UInt8(client.count)] + client)
        }

        static let batchHeaders: [MalformedWireCase] = [(WireDecoder.jobs, UInt8(0x0A)), (.results, 0x0B), (.workerToSink, 0x0B), (.sinkToClient, 0x0B)].flatMap {
            (decoder, command) -> [MalformedWireCase] in
            let name = command == 0x0A ? "JOBS" : "RESULTS"
            return [
                .init(name: "\(name) with 1 frame", decoder: decoder, frames: [batchHeader(command, count: 1)], reason: .frameCount),
                .init(name: "\(name) with 3 frames", decoder: decoder, frames: [batchHeader(command, count: 1), [], []], reason: .frameCount),
                .init(name: "\(name) of 0 entries", decoder: decoder, frames: [batchHeader(command, count: 0), []], reason: .tooMany),
                .init(name: "\(name) of 1025 entries", decoder: decoder, frames: [batchHeader(command, count: 1025), []], reason: .tooMany),
                .init(name: "\(name) of 65535 entries", decoder: decoder, frames: [batchHeader(command, count: .max), []], reason: .tooMany),
                .init(name: "\(name) with an empty client id", decoder: decoder, frames: [batchHeader(command, count: 1, client: []), []], reason: .emptyID),
                .init(name: "\(name) header without a client id", decoder: decoder, frames: [Raw.header(command, [0, 1, 0]), []], reason: .truncated),
                .init(name: "\(name) header without its count", decoder: decoder, frames: [Raw.header(command, [0]), []], reason: .truncated),
            ]
        }

        static let frameCounts: [MalformedWireCase] = {
            var cases: [MalformedWireCase] = []
            for n in [0, 1, 3] {
                func shaped(_ valid: [[UInt8]]) -> [[UInt8]] { Array((valid + [[0xCC]]).prefix(n)) }
                cases.append(.init(name: "JOB with \(n) frames", decoder: .job, frames: shaped(validJob), reason: .frameCount))
                cases.append(.init(name: "RESULT with \(n) frames", decoder: .result, frames: shaped(validResult), reason: .frameCount))
                cases.append(.init(name: "MEMBERS with \(n) frames", decoder: .members, frames: shaped(validMembers), reason: .frameCount))
                cases.append(.init(name: "RESULT with \(n) frames", decoder: .sinkToClient, frames: shaped(validResult), reason: .frameCount))
                cases.append(.init(name: "MEMBERS with \(n) frames", decoder: .sinkToClient, frames: shaped(validMembers), reason: .frameCount))
                cases.append(.init(name: "RESULT with \(n) frames", decoder: .workerToSink, frames: shaped(validResult), reason: .frameCount))
            }
            for n in [0, 2, 3] {
                let frames = Array(([announce] + [[], []]).prefix(n))
                cases.append(.init(name: "ANNOUNCE with \(n) frames", decoder: .workerToSink, frames: frames, reason: .frameCount))
                let byeFrames = Array(([bye] + [[0x01], [0x02]]).prefix(n))
                cases.append(.init(name: "BYE with \(n) frames", decoder: .workerToSink, frames: byeFrames, reason: .frameCount))
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
                cases.append(.init(name: "first signature byte", decoder: decoder, frames: patched(0, 0x55), reason: .signature))
                cases.append(.init(name: "second signature byte", decoder: decoder, frames: patched(1, 0x6D), reason: .signature))
                cases.append(.init(name: "zero signature", decoder: decoder, frames: [[0, 0, 1, 1], [1]], reason: .signature))
                for version: UInt8 in [0x00, 0x02, 0xFF] {
                    cases.append(.init(name: "version \(version)", decoder: decoder, frames: patched(2, version), reason: .version))
                }
                for command: UInt8 in [0x00, 0x07, 0x80, 0xFF] {
                    cases.append(.init(name: "command \(command)", decoder: decoder, frames: patched(3, command), reason: .command))
                }
            }
            return cases
        }()

        static let unexpectedCommands: [MalformedWireCase] = [
            .init(name: "MEMBERS", decoder: .job, frames: validMembers, reason: .command),
            .init(name: "RESULT", decoder: .job, frames: validResult, reason: .command),
            .init(name: "HELLO + payload", decoder: .job, frames: [hello, []], reason: .command),
            .init(name: "JOB", decoder: .result, frames: validJob, reason: .command),
            .init(name: "MEMBERS", decoder: .result, frames: validMembers, reason: .command),
            .init(name: "RESULT", decoder: .members, frames: validResult, reason: .command),
            .init(name: "JOB", decoder: .members, frames: validJob, reason: .command),
            .init(name: "JOB", decoder: .workerToSink, frames: validJob, reason: .command),
            .init(name: "HELLO", decoder: .workerToSink, frames: [hello], reason: .command),
            .init(name: "MEMBERS", decoder: .workerToSink, frames: validMembers, reason: .command),
            .init(name: "JOB", decoder: .sinkToClient, frames: validJob, reason: .command),
            .init(name: "ANNOUNCE", decoder: .sinkToClient, frames: [announce], reason: .command),
            .init(name: "BYE", decoder: .sinkToClient, frames: [bye], reason: .command),
            .init(name: "HELLO", decoder: .sinkToClient, frames: [hello], reason: .command),
        ]

        static let emptyIDs: [MalformedWireCase] = [
            .init(name: "empty client id", decoder: .job, frames: [Raw.job(client: []), []], reason: .emptyID),
            .init(name: "empty job id", decoder: .job, frames: [Raw.job(job: []), []], reason: .emptyID),
            .init(name: "empty handler name", decoder: .job, frames: [Raw.job(handler: []), []], reason: .emptyID),
            .init(name: "empty client id", decoder: .result, frames: [Raw.result(client: []), []], reason: .emptyID),
            .init(name: "empty job id", decoder: .result, frames: [Raw.result(job: []), []], reason: .emptyID),
            .init(name: "empty client id", decoder: .sinkToClient, frames: [Raw.result(client: []), []], reason: .emptyID),
            .init(name: "empty job id", decoder: .sinkToClient, frames: [Raw.result(job: []), []], reason: .emptyID),
            .init(name: "empty client id", decoder: .workerToSink, frames: [Raw.result(client: []), []], reason: .emptyID),
            .init(name: "empty worker id", decoder: .announce, frames: [Raw.announce(worker: [])], reason: .emptyID),
            .init(name: "empty endpoint", decoder: .announce, frames: [Raw.announce(endpoint: [])], reason: .emptyID),
            .init(name: "empty worker id", decoder: .workerToSink, frames: [Raw.announce(worker: [])], reason: .emptyID),
            .init(name: "empty worker id", decoder: .bye, frames: [Raw.bye(worker: [])], reason: .emptyID),
            .init(name: "BYE empty worker id", decoder: .workerToSink, frames: [Raw.bye(worker: [])], reason: .emptyID),
            .init(name: "member with empty worker id", decoder: .members,
                  frames: [Raw.membersHeader(), Raw.membersBody(count: 2, Raw.member(), Raw.member(worker: []))], reason: .emptyID),
            .init(name: "member with empty endpoint", decoder: .members,
                  frames: [Raw.membersHeader(), Raw.membersBody(count: 1, Raw.member(endpoint: []))], reason: .emptyID),
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
                .init(name: "handler \(named.name)", decoder: .job, frames: [Raw.job(handler: bad), []], reason: .invalidUTF8),
                .init(name: "endpoint \(named.name)", decoder: .announce, frames: [Raw.announce(endpoint: bad)], reason: .invalidUTF8),
                .init(name: "endpoint \(named.name)", decoder: .workerToSink, frames: [Raw.announce(endpoint: bad)], reason: .invalidUTF8),
                .init(name: "member endpoint \(named.name)", decoder: .members,
                      frames: [Raw.membersHeader(), Raw.membersBody(count: 1, Raw.member(endpoint: bad))], reason: .invalidUTF8),
                .init(name: "member endpoint \(named.name)", decoder: .sinkToClient,
                      frames: [Raw.membersHeader(), Raw.membersBody(count: 1, Raw.member(endpoint: bad))], reason: .invalidUTF8),
            ]
        }

        static let statuses: [MalformedWireCase] = [UInt8(12), 13, 0x7F, 0xFF].flatMap { status -> [MalformedWireCase] in [
            .init(name: "status \(status)", decoder: .result, frames: [Raw.result(status: status), []], reason: .status),
            .init(name: "status \(status)", decoder: .sinkToClient, frames: [Raw.result(status: status), []], reason: .status),
        ] }

        static let memberBodies: [MalformedWireCase] = {
            let header = Raw.membersHeader()
            let three = Raw.membersBody(count: 3, Raw.member(), Raw.member(worker: [2]), Raw.member(worker: [3]))
            return [
                .init(name: "count 4097", decoder: .members, frames: [header, Raw.membersBody(count: 4097)], reason: .tooMany),
                .init(name: "count 65535", decoder: .members, frames: [header, Raw.membersBody(count: .max, Raw.member())], reason: .tooMany),
                .init(name: "count 4097", decoder: .sinkToClient, frames: [header, Raw.membersBody(count: 4097)], reason: .tooMany),
                .init(name: "one trailing byte", decoder: .members, frames: [header, three + [0]], reason: .trailing),
                .init(name: "a whole extra member", decoder: .members,
                      frames: [header, Raw.membersBody(count: 1, Raw.member(), Raw.member(worker: [2]))], reason: .trailing),
                .init(name: "trailing bytes after zero members", decoder: .members, frames: [header, Raw.membersBody(count: 0) + [1, 2]], reason: .trailing),
                .init(name: "trailing byte", decoder: .sinkToClient, frames: [header, three + [0xFF]], reason: .trailing),
                .init(name: "count 2, one member", decoder: .members, frames: [header, Raw.membersBody(count: 2, Raw.member())], reason: .truncated),
                .init(name: "count 3, no members", decoder: .members, frames: [header, Raw.membersBody(count: 3)], reason: .truncated),
                .init(name: "count 1, member without concurrency", decoder: .members,
                      frames: [header, Array(Raw.membersBody(count: 1, Raw.member()).dropLast(2))], reason: .truncated),
                .init(name: "empty body", decoder: .members, frames: [header, []], reason: .truncated),
                .init(name: "one-byte body", decoder: .members, frames: [header, [0]], reason: .truncated),
                .init(name: "header without epoch", decoder: .members, frames: [Raw.header(0x06), Raw.membersBody(count: 0)], reason: .truncated),
                .init(name: "header with half an epoch", decoder: .members,
                      frames: [Raw.header(0x06, [0, 0, 0, 0]), Raw.membersBody(count: 0)], reason: .truncated),
            ]
        }()

        @Test(arguments: frameCounts + signatureVersionCommand + unexpectedCommands + emptyIDs + invalidUTF8 + statuses + memberBodies + batchHeaders)
        func rejected(_ malformed: MalformedWireCase) {
            let got = reason { try malformed.decoder.run(malformed.frames) }
            #expect(got == malformed.reason)
        }

        /// The valid messages the cases above are variations of do decode, so each case fails for
        /// the reason it names and not for another defect of its base message.
        @Test func baseMessagesAreValid() throws {
            _ = try JobMessage.decode(Self.validJob)
            _ = try ResultMessage.decode(Self.validResult)
            _ = try MembersMessage.decode(Self.validMembers)
            _ = try WorkerToSink.decode([Self.announce])
            _ = try WorkerToSink.decode([Self.bye])
            _ = try AnnounceMessage.decode(header: Raw.announce(endpoint: Array("ü".utf8)))
        }

        @Test func memberCountAtTheLimitIsAccepted() throws {
            let members = (0..<Wire.maxMembers).map { Raw.member(worker: Raw.u16(UInt16($0)), endpoint: [0x61]) }
            let body = Raw.u16(UInt16(Wire.maxMembers)) + members.joined()
            #expect(try MembersMessage.decode([Raw.membersHeader(), body]).members.count == Wire.maxMembers)
            // One more, with its entry present, is refused for the count alone.
            let over = Raw.u16(UInt16(Wire.maxMembers + 1)) + members.joined() + Raw.member(worker: [0xFF, 0xFF, 0xFF], endpoint: [0x61])
            expectViolation(.tooMany) { try MembersMessage.decode([Raw.membersHeader(), over]) }
        }
    }
}

// MARK: - Truncated headers

extension ProtocolTests {
    @Suite struct Truncation {
        /// Every prefix shorter than `full` with the other frames unchanged.
        private static func prefixes(of full: [[UInt8]]) -> [(length: Int, frames: [[UInt8]])] {
            (0..<full[0].count).map { n in (n, [Array(full[0].prefix(n))] + full.dropFirst()) }
        }

        @Test func everyPrefixOfAJobHeaderIsTruncated() {
            let job = JobMessage(clientID: [1, 2, 3], jobID: [0, 0, 0, 0, 0, 0, 0, 9], handler: "hé", deadline: 77, attempt: 2, payload: [5])
            let full = job.encode()
            for (n, frames) in Self.prefixes(of: full) {
                expectViolation(.truncated, "JOB header cut to \(n) bytes") { try JobMessage.decode(frames) }
                expectViolation(n < 4 ? .truncated : .command, "cut to \(n)") { try WorkerToSink.decode(frames) }
                expectViolation(n < 4 ? .truncated : .command, "cut to \(n)") { try SinkToClient.decode(frames) }
                // Salvaging needs the whole client id and job id.
                let salvaged = JobMessage.salvageIDs(frames)
                #expect((salvaged != nil) == (n >= 14 + 1 + 3 + 1 + 8), "salvage from \(n) bytes")
            }
        }

        @Test func everyPrefixOfAResultHeaderIsTruncated() throws {
            let result = ResultMessage(status: .failed, attempt: 3, clientID: [7, 7, 7, 7], jobID: [1, 2, 3], body: Array("boom".utf8))
            let full = result.encode()
            let clientIDEnd = 7 + 1 + result.clientID.count
            for (n, frames) in Self.prefixes(of: full) {
                expectViolation(.truncated, "RESULT header cut to \(n) bytes") { try ResultMessage.decode(frames) }
                expectViolation(.truncated, "cut to \(n)") { try SinkToClient.decode(frames) }
                // The sink's fast path reads only up to the client id and forwards the rest as is.
                if n < clientIDEnd {
                    expectViolation(.truncated, "cut to \(n)") { try WorkerToSink.decode(frames) }
                    expectViolation(.truncated, "cut to \(n)") { try ResultMessage.clientID(inHeader: frames[0]) }
                } else {
                    #expect(try WorkerToSink.decode(frames) == .result(clientID: result.clientID, count: 1), "cut to \(n)")
                }
            }
        }

        @Test func everyPrefixOfAnAnnounceOrByeHeaderIsTruncated() {
            let announce = AnnounceMessage(workerID: Array("w-1".utf8), endpoint: "tcp://höst:1", concurrency: 3).encode()
            for (n, frames) in Self.prefixes(of: announce) {
                expectViolation(.truncated, "ANNOUNCE cut to \(n) bytes") { try AnnounceMessage.decode(header: frames[0]) }
                expectViolation(.truncated, "ANNOUNCE cut to \(n) bytes") { try WorkerToSink.decode(frames) }
            }
            let bye = ByeMessage(workerID: Array("w-1".utf8)).encode()
            for (n, frames) in Self.prefixes(of: bye) {
                expectViolation(.truncated, "BYE cut to \(n) bytes") { try ByeMessage.decode(header: frames[0]) }
                expectViolation(.truncated, "BYE cut to \(n) bytes") { try WorkerToSink.decode(frames) }
            }
        }

        @Test func everyPrefixOfAMembersHeaderOrBodyIsTruncated() {
            let members = MembersMessage(epoch: 5, members: [
                .init(workerID: [1], endpoint: "tcp://a:1", concurrency: 2),
                .init(workerID: [2, 2], endpoint: "tcp://b:2", concurrency: 3),
            ]).encode()
            // The flags byte after the epoch is optional (a sink from before it sends none).
            for (n, frames) in Self.prefixes(of: members) where n < 12 {
                expectViolation(.truncated, "MEMBERS header cut to \(n) bytes") { try MembersMessage.decode(frames) }
                expectViolation(.truncated, "MEMBERS header cut to \(n) bytes") { try SinkToClient.decode(frames) }
            }
            for n in 0..<members[1].count {
                let frames = [members[0], Array(members[1].prefix(n))]
                expectViolation(.truncated, "MEMBERS body cut to \(n) bytes") { try MembersMessage.decode(frames) }
            }
        }

        /// A length byte that claims more than the frame holds is truncation, not a crash.
        @Test(arguments: [UInt8(2), 3, 100, 255])
        func lengthBeyondTheFrame(_ length: UInt8) {
            let header = Raw.header(0x01, Raw.u64(0), Raw.u16(1), [1, 0x63], [2, 0, 1], [length] + Array("a".utf8))
            expectViolation(.truncated) { try JobMessage.decode([header, []]) }
            let result = Raw.header(0x02, [0], Raw.u16(1), [length, 0x63])
            expectViolation(.truncated) { try ResultMessage.decode([result, []]) }
            expectViolation(.truncated) { try ResultMessage.clientID(inHeader: result) }
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

        @Test(arguments: extensions)
        func headersIgnoreTrailingBytes(_ named: WireCase<[UInt8]>) throws {
            let tail = named.value

            // Tails go after the last field this revision defines (for JOB its dispatch
            // options, for ANNOUNCE its capabilities, for MEMBERS its capability table).
            let job = JobMessage(clientID: [1], jobID: [2], handler: "echo", deadline: 9, attempt: 1, payload: [3],
                                 options: DispatchOptions(priority: 7, requires: ["gpu"]))
            var jobFrames = job.encode()
            jobFrames[0] += tail
            #expect(try JobMessage.decode(jobFrames) == job)
            #expect(JobMessage.salvageIDs(jobFrames)?.jobID == [2])

            let result = ResultMessage(status: .rejected, attempt: 1, clientID: [1], jobID: [2], body: Array("no".utf8))
            var resultFrames = result.encode()
            resultFrames[0] += tail
            #expect(try ResultMessage.decode(resultFrames) == result)
            #expect(try SinkToClient.decode(resultFrames) == .result(result))
            #expect(try WorkerToSink.decode(resultFrames) == .result(clientID: [1], count: 1))
            #expect(try ResultMessage.clientID(inHeader: resultFrames[0]) == [1])

            let announce = AnnounceMessage(workerID: [4], endpoint: "tcp://x:1", concurrency: 2,
                                           capabilities: Capabilities(handlers: ["echo"], labels: ["gpu"]))
            let announceHeader = announce.encode()[0] + tail
            #expect(try AnnounceMessage.decode(header: announceHeader) == announce)
            #expect(try WorkerToSink.decode([announceHeader]) == .announce(announce))

            let bye = ByeMessage(workerID: [4])
            let byeHeader = bye.encode()[0] + tail
            #expect(try ByeMessage.decode(header: byeHeader) == bye)
            #expect(try WorkerToSink.decode([byeHeader]) == .bye(bye))

            // The MEMBERS header may grow too; only its body is closed.
            let members = MembersMessage(epoch: 3, members: [.init(workerID: [4], endpoint: "tcp://x:1", concurrency: 2,
                                                                   capabilities: Capabilities(handlers: ["echo"], labels: []))])
            var memberFrames = members.encode()
            memberFrames[0] += tail
            #expect(try MembersMessage.decode(memberFrames) == members)
            #expect(try SinkToClient.decode(memberFrames) == .members(members))

            #expect(try ByteReader.command(of: HelloMessage().encode()[0] + tail) == .hello)
        }
    }
}

// MARK: - Salvaging ids and the sink's fast path

extension ProtocolTests {
    @Suite struct Salvage {
        @Test(arguments: Malformed.invalidUTF8Sequences)
        func idsOfAJobWithAnInvalidHandlerName(_ named: WireCase<[UInt8]>) throws {
            let frames = [Raw.job(client: [0xC1, 0x00], job: [0, 0, 0, 0, 0, 0, 0, 42], handler: named.value), [1, 2]]
            expectViolation(.invalidUTF8) { try JobMessage.decode(frames) }
            let ids = try #require(JobMessage.salvageIDs(frames))
            #expect(ids.clientID == [0xC1, 0x00])
            #expect(ids.jobID == [0, 0, 0, 0, 0, 0, 0, 42])
        }

        @Test func idsOfAJobWithOtherDamageAfterTheIDs() throws {
            // No handler name at all, an empty one, one cut short, and a wrong frame count.
            let damaged: [[[UInt8]]] = [
                [Raw.header(0x01, Raw.u64(0), Raw.u16(1), Raw.short([5]), Raw.short([6])), []],
                [Raw.job(client: [5], job: [6], handler: []), []],
                [Raw.header(0x01, Raw.u64(0), Raw.u16(1), Raw.short([5]), Raw.short([6]), [9, 0x61]), []],
                [Raw.job(client: [5], job: [6])],
                [Raw.job(client: [5], job: [6]), [], []],
            ]
            for frames in damaged {
                #expect(throws: ProtocolViolation.self) { try JobMessage.decode(frames) }
                let ids = try #require(JobMessage.salvageIDs(frames))
                #expect(ids.clientID == [5])
                #expect(ids.jobID == [6])
            }
        }

        static let garbage: [WireCase<[[UInt8]]>] = [
            WireCase("no frames", []),
            WireCase("an empty frame", [[]]),
            WireCase("three bytes", [[0x54, 0x4D, 0x01]]),
            WireCase("bad signature", [[0x54, 0x4E] + Array(Raw.job().dropFirst(2)), []]),
            WireCase("bad version", [[0x54, 0x4D, 0x02] + Array(Raw.job().dropFirst(3)), []]),
            WireCase("a RESULT", [Raw.result(), []]),
            WireCase("a MEMBERS", [Raw.membersHeader(), Raw.membersBody(count: 0)]),
            WireCase("a JOB header of 14 bytes", [Array(Raw.job().prefix(14)), []]),
            WireCase("a JOB cut inside its job id", [Array(Raw.job(client: [1], job: [1, 2, 3]).prefix(18)), []]),
            WireCase("an empty client id", [Raw.job(client: []), []]),
            WireCase("an empty job id", [Raw.job(job: []), []]),
            WireCase("random bytes", [[0x13, 0x37, 0xC0, 0xFF, 0xEE, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A]]),
        ]

        @Test(arguments: garbage)
        func nothingToSalvage(_ named: WireCase<[[UInt8]]>) {
            #expect(JobMessage.salvageIDs(named.value) == nil)
        }

        @Test(arguments: ResultStatus.allCases)
        func clientIDInHeaderAgreesWithTheFullDecoder(_ status: ResultStatus) throws {
            for clientID in [[UInt8(0)], [0x63], Array("client-ü".utf8), binaryID255] {
                for jobID in [[UInt8(1)], binaryID255] {
                    let frames = ResultMessage(status: status, attempt: 5, clientID: clientID, jobID: jobID, body: [1]).encode()
                    let fast = try ResultMessage.clientID(inHeader: frames[0])
                    #expect(fast == clientID)
                    #expect(fast == (try ResultMessage.decode(frames)).clientID)
                }
            }
        }
    }
}

// MARK: - Fuzzing


extension ProtocolTests {
    @Suite struct Fuzz {
        /// Valid encodings of every message, the seeds of the mutations.
        static let seeds: [[[UInt8]]] = [
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

        @Test func randomAndMutatedFramesNeverCrashAnyDecoder() async {
            var rng = SplitMix64(seed: 0x7A5C_4D65_5348_0001)
            var tally = Tally()
            let iterations = 20_000
            for iteration in 0..<iterations {
                await yieldingNowAndThen(iteration)
                let frames: [[UInt8]]
                switch rng.below(10) {
                case 0, 1: frames = Self.randomFrames(&rng, validStart: false)
                case 2, 3: frames = Self.randomFrames(&rng, validStart: true)
                default: frames = Self.mutate(Self.seeds[rng.below(Self.seeds.count)], &rng)
                }
                Self.check(frames, iteration: iteration, &tally)
            }
            #expect(tally.failures.isEmpty, "\(tally.failures.joined(separator: "\n"))")
            // The fuzzer must get past the framing into every decoder, and provoke every reason.
            for decoder in WireDecoder.allCases {
                #expect(tally.accepted[decoder, default: 0] >= 50, "\(decoder) accepted only \(tally.accepted[decoder, default: 0]) inputs")
            }
            let reasons: [ProtocolViolation.Reason] = [.frameCount, .signature, .version, .command, .truncated, .emptyID,
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

        fileprivate static func randomFrames(_ rng: inout SplitMix64, validStart: Bool) -> [[UInt8]] {
            var frames = (0..<rng.below(5)).map { _ in rng.bytes(rng.chance(5) ? rng.below(600) : rng.below(40)) }
            guard validStart else { return frames }
            if frames.isEmpty { frames.append([]) }
            // Signature, version and a command (sometimes an unknown one), then a run of plausible
            // fields: short strings with small lengths and big-endian numbers.
            var header: [UInt8] = [0x54, 0x4D, 0x01, UInt8(rng.below(13))]
            for _ in 0..<rng.below(8) {
                switch rng.below(4) {
                case 0: header += rng.bytes(rng.below(9))
                case 1:
                    let text = (0..<rng.below(12)).map { _ in UInt8(0x61 + rng.below(26)) }
                    header += [UInt8(text.count)] + text
                case 2: header += [UInt8(rng.below(4))]
                default:
                    let raw = rng.bytes(rng.below(6))
                    header += [UInt8(raw.count)] + raw
                }
            }
            frames[0] = header
            if frames.count >= 2 && rng.chance(50) {
                // A body that begins with a small member count.
                frames[1] = [0, UInt8(rng.below(4))] + frames[1]
            }
            return frames
        }

        fileprivate static func mutate(_ seed: [[UInt8]], _ rng: inout SplitMix64) -> [[UInt8]] {
            var frames = seed
            for _ in 0..<(1 + rng.below(3)) {
                let f = frames.isEmpty ? -1 : rng.below(frames.count)
                switch rng.below(9) {
                case 0, 1, 2:  // flip one bit
                    if f >= 0, !frames[f].isEmpty {
                        let i = rng.below(frames[f].count)
                        frames[f][i] ^= UInt8(1) << UInt8(rng.below(8))
                    }
                case 3:  // truncate
                    if f >= 0 { frames[f] = Array(frames[f].prefix(rng.below(frames[f].count + 1))) }
                case 4:  // append bytes
                    if f >= 0 { frames[f] += rng.bytes(1 + rng.below(8)) }
                case 5:  // overwrite a byte with an interesting value
                    if f >= 0, !frames[f].isEmpty {
                        let values: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x10, 0x11]
                        frames[f][rng.below(frames[f].count)] = values[rng.below(values.count)]
                    }
                case 6:  // drop a frame
                    if f >= 0 { frames.remove(at: f) }
                case 7:  // add a frame
                    frames.insert(rng.bytes(rng.below(6)), at: rng.below(frames.count + 1))
                default:  // swap the header and another frame, or change the command
                    if frames.count >= 2 {
                        frames.swapAt(0, 1)
                    } else if f >= 0, frames[f].count >= 4 {
                        frames[f][3] = UInt8(rng.below(13))
                    }
                }
            }
            return frames
        }

        /// Runs every decoder on `frames` and checks what each accepted against the others and
        /// against re-encoding. Decoders throw only `ProtocolViolation` (typed throws); a crash
        /// would end the test process.
        static func check(_ frames: [[UInt8]], iteration: Int, _ tally: inout Tally) {
            func rejected(_ violation: ProtocolViolation) { tally.reasons.insert(violation.reason.rawValue) }
            let header = frames.first ?? []
            let at = "iteration \(iteration), frames \(frames)"

            do {
                let job = try JobMessage.decode(frames)
                tally.accepted[.job, default: 0] += 1
                let again = job.encode()
                if frames.count != 2 || !header.starts(with: again[0]) || again[1] != frames[1] {
                    tally.fail("JOB does not re-encode to its input: \(at)")
                }
                if job.clientID.isEmpty || job.jobID.isEmpty || job.handler.isEmpty {
                    tally.fail("JOB with an empty field: \(at)")
                }
                if let ids = JobMessage.salvageIDs(frames) {
                    if ids.clientID != job.clientID || ids.jobID != job.jobID { tally.fail("salvageIDs disagrees: \(at)") }
                } else {
                    tally.fail("salvageIDs failed on a valid JOB: \(at)")
                }
            } catch { rejected(error) }

            do {
                let result = try ResultMessage.decode(frames)
                tally.accepted[.result, default: 0] += 1
                let again = result.encode()
                if frames.count != 2 || !header.starts(with: again[0]) || again[1] != frames[1] {
                    tally.fail("RESULT does not re-encode to its input: \(at)")
                }
                if (try? ResultMessage.clientID(inHeader: header)) != result.clientID {
                    tally.fail("clientID(inHeader:) disagrees with decode: \(at)")
                }
                if (try? WorkerToSink.decode(frames)) != .result(clientID: result.clientID, count: 1) {
                    tally.fail("WorkerToSink refuses a valid RESULT: \(at)")
                }
                if (try? SinkToClient.decode(frames)) != .result(result) {
                    tally.fail("SinkToClient disagrees with ResultMessage.decode: \(at)")
                }
            } catch { rejected(error) }

            do {
                let members = try MembersMessage.decode(frames)
                tally.accepted[.members, default: 0] += 1
                // Its flags byte and capability table are normalised on encoding (unknown flag
                // bits dropped, an all-unknown table left out), so compare what they mean.
                let again = members.encode()
                if members.members.count > Wire.maxMembers || (try? MembersMessage.decode(again)) != members
                    || !header.starts(with: again[0].prefix(12)) || (!members.unchanged && again[1] != frames[1]) {
                    tally.fail("MEMBERS does not re-encode to its input: \(at)")
                }
                if (try? SinkToClient.decode(frames)) != .members(members) {
                    tally.fail("SinkToClient disagrees with MembersMessage.decode: \(at)")
                }
            } catch { rejected(error) }

            do {
                let message = try WorkerToSink.decode(frames)
                tally.accepted[.workerToSink, default: 0] += 1
                switch message {
                case .result(let clientID, let count):
                    if frames.count != 2 || (try? ResultMessage.clientID(inHeader: header)) != clientID
                        || count != Batch.resultCount(inHeader: header) || !(1...Wire.maxBatchEntries).contains(count) {
                        tally.fail("WorkerToSink RESULT: \(at)")
                    }
                case .progress(let clientID):
                    if frames.count != 2 || (try? ResultMessage.clientID(inHeader: header)) != clientID {
                        tally.fail("WorkerToSink PROGRESS: \(at)")
                    }
                case .announce(let announce):
                    if frames.count != 1 || (try? AnnounceMessage.decode(header: header)) != announce
                        || (try? ByteReader.command(of: header)) != .announce {
                        tally.fail("WorkerToSink ANNOUNCE: \(at)")
                    }
                case .bye(let bye):
                    if frames.count != 1 || (try? ByeMessage.decode(header: header)) != bye
                        || (try? ByteReader.command(of: header)) != .bye {
                        tally.fail("WorkerToSink BYE: \(at)")
                    }
                }
            } catch { rejected(error) }

            do {
                let message = try SinkToClient.decode(frames)
                tally.accepted[.sinkToClient, default: 0] += 1
                if frames.count != 2 { tally.fail("SinkToClient accepted \(frames.count) frames: \(at)") }
                if case .members(let members) = message, (try? MembersMessage.decode(frames)) != members {
                    tally.fail("SinkToClient MEMBERS: \(at)")
                }
            } catch { rejected(error) }

            // The header-only decoders skip the first four bytes (their callers checked them).
            do {
                let announce = try AnnounceMessage.decode(header: header)
                tally.accepted[.announce, default: 0] += 1
                if announce.workerID.isEmpty || announce.endpoint.isEmpty
                    || !header.dropFirst(4).starts(with: announce.encode()[0].dropFirst(4)) {
                    tally.fail("ANNOUNCE does not re-encode to its input: \(at)")
                }
            } catch { rejected(error) }

            do {
                let bye = try ByeMessage.decode(header: header)
                tally.accepted[.bye, default: 0] += 1
                if bye.workerID.isEmpty || !header.dropFirst(4).starts(with: bye.encode()[0].dropFirst(4)) {
                    tally.fail("BYE does not re-encode to its input: \(at)")
                }
            } catch { rejected(error) }

            do {
                let batch = try JobBatch.decode(frames)
                var jobs: [JobMessage] = []
                do throws(DamagedEntry) {
                    try batch.forEach { jobs.append($0) }
                    tally.accepted[.jobs, default: 0] += 1
                    var again = JobBatchWriter(clientID: batch.clientID)
                    for job in jobs { again.append(jobID: job.jobID, handler: job.handler, deadline: job.deadline, attempt: job.attempt, payload: job.payload) }
                    let encoded = again.encode()
                    if jobs.count != batch.count || !Self.reservedCleared(header).starts(with: encoded[0]) || encoded[1] != frames[1] {
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
                let batch = try ResultBatch.decode(frames)
                var results: [ResultMessage] = []
                do throws(DamagedEntry) {
                    try batch.forEach { results.append($0) }
                    tally.accepted[.results, default: 0] += 1
                    var again = ResultBatchWriter(clientID: batch.clientID)
                    for result in results { again.append(result) }
                    let encoded = again.encode()
                    if results.count != batch.count || !Self.reservedCleared(header).starts(with: encoded[0]) || encoded[1] != frames[1] {
                        tally.fail("RESULTS does not re-encode to its input: \(at)")
                    }
                    if (try? WorkerToSink.decode(frames)) != .result(clientID: batch.clientID, count: batch.count) {
                        tally.fail("WorkerToSink refuses a valid RESULTS: \(at)")
                    }
                } catch {
                    rejected(error.violation)
                }
            } catch { rejected(error) }

            _ = JobMessage.salvageIDs(frames)
            _ = try? ResultMessage.clientID(inHeader: header)
        }
    }
}

// MARK: - The sink reads whole worker headers

extension ProtocolTests {
    /// The sink copies at most `4 + 1 + 2 + 1 + 255` bytes of a worker message's header before
    /// decoding it (Sink/SinkLoop.swift, `handleWorkerMessage`): enough for a RESULT's client id,
    /// but an ANNOUNCE may be up to `4 + 2 + 256 + 256` bytes. An in-process sink on inproc
    /// endpoints receives hand-made ANNOUNCEs through a PUSH socket, as a worker would send them.
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
            try push.send(multipart: short.encode())
            try await eventually("the short ANNOUNCE registers") { sink.stats.liveWorkers == 1 }

            // Valid by section 3: a 200-byte worker id, a 121-byte endpoint and no key: 330 header bytes.
            let long = AnnounceMessage(workerID: Array(repeating: 0x77, count: 200),
                                       endpoint: "tcp://" + String(repeating: "h", count: 110) + ":5555", concurrency: 2)
            let header = long.encode()[0]
            let expectedLength: Int = 4 + 2 + 201 + 122 + 1
            #expect(header.count == expectedLength)
            #expect(header.count > 4 + 1 + 2 + 1 + Wire.maxIDLength)
            #expect(try WorkerToSink.decode([header]) == .announce(long))
            try push.send(multipart: long.encode())
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
