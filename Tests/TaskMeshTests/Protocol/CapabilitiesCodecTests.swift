import Foundation
import Testing
@testable import TaskMesh

// The capability and option codecs (Protocol/Capabilities.swift).

@Suite struct CapabilitiesCodecTests {
    private func decode(_ bytes: [UInt8]) throws(ProtocolViolation) -> Capabilities {
        var r = ByteReader(bytes)
        return try Capabilities.decode(&r)
    }

    @Test func roundTripsInCanonicalOrder() throws {
        let capabilities = Capabilities(handlers: ["sha256", "echo", "echo", "ädd"], labels: ["gpu", "eu", "gpu"])
        #expect(capabilities.handlers == ["echo", "sha256", "ädd"], "sorted by UTF-8 bytes, without repeats")
        #expect(capabilities.labels == ["eu", "gpu"])
        var w = ByteWriter(capacity: 64)
        capabilities.encode(into: &w)
        #expect(w.bytes.count == capabilities.encodedSize)
        #expect(try decode(w.bytes) == capabilities)
    }

    @Test func anAbsentOrUnknownListMeansEveryHandler() throws {
        #expect(try decode([]) == .unknown)
        #expect(try decode([0xFF, 0xFF, 1, 3] + Array("gpu".utf8)) == Capabilities(handlers: nil, labels: ["gpu"]))
        #expect(Capabilities.unknown.canRun("anything", requiring: []))
        #expect(!Capabilities.unknown.canRun("anything", requiring: ["gpu"]))
        #expect(!Capabilities(handlers: [], labels: []).canRun("echo", requiring: []), "an empty list serves nothing")
        let gpu = Capabilities(handlers: ["echo"], labels: ["gpu", "eu"])
        #expect(gpu.canRun("echo", requiring: ["gpu"]) && gpu.canRun("echo", requiring: ["eu", "gpu"]))
        #expect(!gpu.canRun("echo", requiring: ["us"]) && !gpu.canRun("sha256", requiring: []))
    }

    @Test func namesOutOfOrderRepeatedOrTooManyAreMalformed() {
        let e = Array("echo".utf8), s = Array("sha".utf8)
        #expect(throws: ProtocolViolation(.order, "handler name \"echo\" after \"sha\"")) {
            try decode([0, 2, 3] + s + [4] + e + [0])
        }
        #expect((try? decode([0, 2, 4] + e + [4] + e + [0])) == nil, "a repeated name")
        #expect((try? decode([0x10, 0x01])) == nil, "4097 handlers")
        #expect((try? decode([0, 0, 33] + Array(repeating: [1, 0x61], count: 33).joined())) == nil, "33 labels")
        #expect((try? decode([0, 1, 0, 0])) == nil, "an empty name")
        #expect((try? decode([0, 1, 4] + e)) == nil, "no label count")
    }

    @Test func dispatchOptionsRoundTripAndRejectAPriorityOutside1To9() throws {
        let options = DispatchOptions(priority: 9, requires: ["gpu", "eu"])
        var w = ByteWriter(capacity: 16)
        options.encode(into: &w)
        var r = ByteReader(w.bytes)
        #expect(try DispatchOptions.decode(&r) == options)
        for bad: UInt8 in [0, 10, 255] {
            var bytes = ByteReader([bad, 0])
            #expect(throws: ProtocolViolation.self) { try DispatchOptions.decode(&bytes) }
        }
        #expect(DispatchOptions.standard.isStandard && !options.isStandard)
    }

    @Test func aJobsBatchCarriesOptionsOnlyWithItsFlag() throws {
        var writer = JobBatchWriter(clientID: [7], withOptions: true)
        let gpu = DispatchOptions(priority: 8, requires: ["gpu"])
        let firstFits = writer.appendIfItFits(jobID: [1], handler: "a", deadline: 0, attempt: 1, payload: [1], options: gpu)
        let secondFits = writer.appendIfItFits(jobID: [2], handler: "a", deadline: 0, attempt: 1, payload: [2])
        #expect(firstFits && secondFits)
        let message = writer.encode()
        #expect(message[10] == Batch.optionsFlag)
        var seen: [JobMessage] = []
        try JobBatch.decode(message).forEach { seen.append($0) }
        #expect(seen.map(\.options) == [gpu, .standard])
        var plain = JobBatchWriter(clientID: [7])
        plain.append(jobID: [1], handler: "a", deadline: 0, attempt: 1, payload: [], options: gpu)
        #expect(plain.encode()[10] == 0)
        var unflagged: [JobMessage] = []
        try JobBatch.decode(plain.encode()).forEach { unflagged.append($0) }
        #expect(unflagged.map(\.options) == [.standard], "without the flag no options are written")
    }

    @Test func anUnchangedMembersListsNobodyAndATableMatchesTheBody() throws {
        let unchanged = MembersMessage(epoch: 4, members: [], unchanged: true)
        #expect(try MembersMessage.decode(unchanged.encode()) == unchanged)
        let listed = MembersMessage.Member(workerID: [1], endpoint: "tcp://a:1", concurrency: 1)
        let body = wireParts(MembersMessage(epoch: 4, members: [listed]).encode())[1]
        let header = wireParts(unchanged.encode())[0]
        #expect(throws: ProtocolViolation.self) { try MembersMessage.decode(header + body) }
        // A table flag with no table for the listed member is truncated.
        let tableless = restated(Array(header.prefix(16)) + [MembersMessage.capabilitiesFlag])
        #expect(throws: ProtocolViolation(.truncated, "capability table of 0 of 1 members")) { try MembersMessage.decode(tableless + body) }
        // A legacy member beside an advertising one keeps "every handler".
        let mixed = MembersMessage(epoch: 5, members: [listed, .init(workerID: [2], endpoint: "tcp://b:1", concurrency: 1,
                                                                     capabilities: Capabilities(handlers: ["echo"], labels: []))])
        #expect(try MembersMessage.decode(mixed.encode()) == mixed)
    }
}
