import Testing
import ZMQ
@testable import TaskMesh

// JOBS and RESULTS (Protocol/Batches.swift): what a batch carries, how a damaged one is read,
// the limits a sender keeps, and a client's outbox handing out several jobs at once.

private func jobs(_ batch: JobBatch) throws(DamagedEntry) -> [JobMessage] {
    var out: [JobMessage] = []
    try batch.forEach { out.append($0) }
    return out
}

private func results(_ batch: ResultBatch) throws(DamagedEntry) -> [ResultMessage] {
    var out: [ResultMessage] = []
    try batch.forEach { out.append($0) }
    return out
}

@Suite struct BatchTests {
    static let client: [UInt8] = Array("client-7".utf8)

    static let sampleJobs: [JobMessage] = [
        JobMessage(clientID: client, jobID: [0, 0, 0, 0, 0, 0, 0, 1], handler: "echo", deadline: 0, attempt: 1, payload: Array("hi".utf8)),
        JobMessage(clientID: client, jobID: (0..<255).map { UInt8($0) }, handler: String(repeating: "日", count: 85), deadline: .max, attempt: 65535, payload: []),
        JobMessage(clientID: client, jobID: [0], handler: "sha256", deadline: 1_700_000_000_000, attempt: 2, payload: [UInt8](repeating: 0xAB, count: Wire.batchablePayload)),
    ]

    static func encode(_ jobs: [JobMessage]) -> [UInt8] {
        var writer = JobBatchWriter(clientID: client)
        for job in jobs { writer.append(jobID: job.jobID, handler: job.handler, deadline: job.deadline, attempt: job.attempt, payload: job.payload) }
        return writer.encode()
    }

    @Test func jobsRoundTrip() throws {
        let batch = try JobBatch.decode(Self.encode(Self.sampleJobs))
        #expect(batch.clientID == Self.client)
        #expect(batch.count == 3)
        #expect(try jobs(batch) == Self.sampleJobs)
    }

    @Test(arguments: ResultStatus.allCases)
    func resultsRoundTrip(_ status: ResultStatus) throws {
        let sent = [
            ResultMessage(status: status, attempt: 1, clientID: Self.client, jobID: [1], body: Array("body".utf8)),
            ResultMessage(status: .ok, attempt: 9, clientID: Self.client, jobID: (0..<255).map { UInt8($0) }, body: []),
        ]
        var writer = ResultBatchWriter(clientID: Self.client)
        for result in sent { writer.append(result) }
        let message = writer.encode()
        let batch = try ResultBatch.decode(message)
        #expect(try results(batch) == sent)
        // The sink routes it like a RESULT: client id at offset 11, the count from the header.
        #expect(try WorkerToSink.decode(message) == .result(clientID: Self.client, count: 2))
        #expect(try ResultMessage.clientID(inHeader: message, headerLength: wireParts(message)[0].count) == Self.client)
        #expect(try SinkToClient.decode(message) == .results(batch))
    }

    /// The bytes of docs/PROTOCOL.md's batch example.
    @Test func encodesToTheDocumentedBytes() {
        var jobs = JobBatchWriter(clientID: [0x63])
        jobs.append(jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: Array("hi".utf8))
        jobs.append(jobID: [2], handler: "echo", deadline: 0, attempt: 1, payload: [])
        #expect(jobs.encode() == [
            0x54, 0x4D, 0x02, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x00, 0x02, 0x00, 0x01, 0x63,
            0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x01, 0x01, 0x04, 0x65, 0x63, 0x68, 0x6F, 0x00, 0x00, 0x00, 0x02, 0x68, 0x69,
            0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x01, 0x02, 0x04, 0x65, 0x63, 0x68, 0x6F, 0x00, 0x00, 0x00, 0x00,
        ])
        var results = ResultBatchWriter(clientID: [0x63])
        results.append(ResultMessage(status: .ok, attempt: 1, clientID: [0x63], jobID: [1], body: Array("hi".utf8)))
        results.append(ResultMessage(status: .failed, attempt: 1, clientID: [0x63], jobID: [2], body: Array("no".utf8)))
        #expect(results.encode() == [
            0x54, 0x4D, 0x02, 0x0B, 0x00, 0x00, 0x00, 0x0D, 0x00, 0x02, 0x00, 0x01, 0x63,
            0x00, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x02, 0x68, 0x69,
            0x03, 0x00, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02, 0x6E, 0x6F,
        ])
    }

    // MARK: Damage

    /// Entries before the damage are delivered; the error names the damaged entry's job id when
    /// it could be read, so a worker can answer it.
    /// Consecutive entries mostly repeat a handler name (the reader reuses the previous one);
    /// every name still comes out as sent, the changes and the returns included.
    @Test func repeatedAndChangingHandlerNamesDecodeAsSent() throws {
        let names = ["echo", "echo", "sha256", "echo", "ecHo", "echo", "日本", "echo", "ech", "echoo", "echo"]
        let sent = names.enumerated().map { n, name in
            JobMessage(clientID: Self.client, jobID: [UInt8(n)], handler: name, deadline: 0, attempt: 1, payload: [UInt8(n)])
        }
        #expect(try jobs(JobBatch.decode(Self.encode(sent))) == sent)
    }

    @Test func aDamagedEntryEndsTheBatchAfterTheIntactOnes() throws {
        var message = Self.encode(Array(Self.sampleJobs.prefix(1)) + [
            JobMessage(clientID: Self.client, jobID: [7, 7], handler: "echo", deadline: 0, attempt: 1, payload: [1]),
            JobMessage(clientID: Self.client, jobID: [8], handler: "echo", deadline: 0, attempt: 1, payload: [2]),
        ])
        // The second entry's handler name becomes invalid UTF-8: its first byte follows the
        // first entry, a deadline, an attempt, a 2-byte job id and the name's length.
        let secondEntry = JobBatchWriter.entrySize(jobID: Self.sampleJobs[0].jobID, handler: "echo", payload: Self.sampleJobs[0].payload)
        message[wireParts(message)[0].count + secondEntry + 8 + 2 + (1 + 2) + 1] = 0xFF
        let batch = try JobBatch.decode(message)
        var delivered: [JobMessage] = []
        #expect {
            try batch.forEach { delivered.append($0) }
        } throws: { error in
            let damage = error as? DamagedEntry
            return damage?.jobID == [7, 7] && damage?.violation.reason == .invalidUTF8
        }
        #expect(delivered == Array(Self.sampleJobs.prefix(1)))
    }

    @Test func aBodyShorterOrLongerThanItsCountIsDamaged() throws {
        let frames = wireParts(Self.encode(Self.sampleJobs))
        let short = try JobBatch.decode([frames[0], Array(frames[1].dropLast())].joinedMessage)
        #expect(throws: DamagedEntry.self) { try jobs(short) }
        let long = try JobBatch.decode([frames[0], frames[1] + [0]].joinedMessage)
        var delivered = 0
        #expect {
            try long.forEach { _ in delivered += 1 }
        } throws: { ($0 as? DamagedEntry)?.violation.reason == .trailing }
        #expect(delivered == 3)
        // A header that counts fewer entries than the body holds.
        var header = frames[0]
        header[9] = 2
        #expect(throws: DamagedEntry.self) { try jobs(try JobBatch.decode([header, frames[1]].joinedMessage)) }
    }

    @Test func aResultWithAnUnknownStatusIsDamaged() throws {
        var writer = ResultBatchWriter(clientID: Self.client)
        writer.append(ResultMessage(status: .ok, attempt: 1, clientID: Self.client, jobID: [1], body: []))
        writer.append(ResultMessage(status: .ok, attempt: 1, clientID: Self.client, jobID: [2], body: []))
        var message = writer.encode()
        message[wireParts(message)[0].count + 1 + 2 + (1 + 1) + 4] = 0x7F  // the second entry's status, after the first entry
        var delivered: [ResultMessage] = []
        #expect {
            try ResultBatch.decode(message).forEach { delivered.append($0) }
        } throws: { error in
            let damage = error as? DamagedEntry
            return damage?.violation.reason == .status && damage?.jobID == [2]
        }
        #expect(delivered.map(\.jobID) == [[1]])
    }

    // MARK: What a sender puts in one batch

    @Test func aBatchStopsAtItsEntryAndByteLimits() {
        var writer = JobBatchWriter(clientID: Self.client)
        let size = JobBatchWriter.entrySize(jobID: [1], handler: "echo", payload: [0])
        while writer.fits(entrySize: size, payloadSize: 1) {
            writer.append(jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: [0])
        }
        #expect(writer.count == Wire.batchEntries)

        var big = JobBatchWriter(clientID: Self.client)
        let payload = [UInt8](repeating: 1, count: Wire.batchablePayload)
        let bigSize = JobBatchWriter.entrySize(jobID: [1], handler: "echo", payload: payload)
        while big.fits(entrySize: bigSize, payloadSize: payload.count) {
            big.append(jobID: [1], handler: "echo", deadline: 0, attempt: 1, payload: payload)
        }
        #expect(big.count == Wire.batchBytes / bigSize)
        #expect(wireParts(big.encode())[1].count <= Wire.batchBytes)
        // Within the frame limit of the smallest allowed max_payload.
        #expect(big.encode().count < SocketFactory.headerAllowance)

        #expect(!JobBatchWriter(clientID: Self.client).fits(entrySize: 20 + Wire.batchablePayload + 1, payloadSize: Wire.batchablePayload + 1))
    }

    @Test func resultsForAnotherClientOrTooLargeDoNotJoin() {
        var writer = ResultBatchWriter(clientID: Self.client)
        let mine = ResultMessage(status: .ok, attempt: 1, clientID: Self.client, jobID: [1], body: [])
        #expect(writer.fits(mine))
        writer.append(mine)
        #expect(!writer.fits(ResultMessage(status: .ok, attempt: 1, clientID: [9], jobID: [2], body: [])))
        #expect(!writer.fits(ResultMessage(status: .ok, attempt: 1, clientID: Self.client, jobID: [3],
                                           body: [UInt8](repeating: 0, count: Wire.batchablePayload + 1))))
    }

    // MARK: The client's outbox

    @Test func peekToSendOffersWaitingJobsInOrderAndSkipsEndedOnes() {
        let t0 = Instant.current
        var pending = PendingJobs()
        for n in 1...6 {
            _ = pending.add(Submission(jobID: [UInt8(n)], handler: "echo", payload: [], deadline: t0 + .seconds(60), wallDeadline: 0, promise: Promise()))
        }
        _ = pending.finish([1])  // ended at the front
        _ = pending.finish([3])  // ended in the middle
        var offered: [[UInt8]] = []
        let span = pending.peekToSend { next in
            guard offered.count < 3 else { return false }
            offered.append(next.jobID)
            return true
        }
        #expect(offered == [[2], [4], [5]])
        // Nothing is sent until it is marked: a second look offers the same jobs.
        var again: [[UInt8]] = []
        _ = pending.peekToSend { next in
            guard again.count < 3 else { return false }
            again.append(next.jobID)
            return true
        }
        #expect(again == [[2], [4], [5]])
        pending.markSent(span: span, to: 7)
        #expect(pending.entry([2])?.sent == true && pending.entry([5])?.sent == true)
        #expect(pending.entry([4])?.worker == 7)
        let next = pending.nextToSend()
        #expect(next?.jobID == [6])
        // A decline of a job that was never sent does not queue it twice.
        let unsentRequeued = pending.requeue([6])
        let sentRequeued = pending.requeue([4])
        #expect(!unsentRequeued && sentRequeued)
        #expect(pending.entry([4])?.worker == 0, "a job handed back belongs to no worker until sent again")
        var order: [[UInt8]] = []
        let rest = pending.peekToSend { order.append($0.jobID); return true }
        #expect(order == [[4], [6]])
        pending.markSent(span: rest)
        let nothing = pending.nextToSend()
        #expect(nothing == nil)
    }

    /// A first job too large to batch leaves alone as a JOB (never as an empty JOBS), and the
    /// jobs after it follow in later messages: a broker's send loop always moves on.
    @Test func aFirstJobTooLargeToBatchLeavesAloneAsAJob() throws {
        let client: [UInt8] = [0x63]
        let big = JobMessage(clientID: client, jobID: [1], handler: "echo", deadline: 0, attempt: 1,
                             payload: [UInt8](repeating: 1, count: Wire.batchablePayload + 1))
        let small = JobMessage(clientID: client, jobID: [2], handler: "echo", deadline: 0, attempt: 1, payload: [2])
        let jobs = [big, big, small, small]
        var sent: [JobMessage] = []
        var start = 0
        while let (frames, count) = JobBatchWriter.firstMessage(of: jobs[start...]) {
            try #require(count >= 1, "every message carries a job")
            if count == 1 { sent.append(try JobMessage.decode(frames)) } else { try JobBatch.decode(frames).forEach { sent.append($0) } }
            start += count
        }
        #expect(sent.map(\.jobID) == [[1], [1], [2], [2]])
    }
}
