/// JOBS and RESULTS: many jobs of one client, or many results for one client, in one message
/// (docs/PROTOCOL.md, "JOBS and RESULTS"). A loaded client or worker pays one message's cost per
/// batch instead of one per job; a lone job or result still travels as JOB or RESULT, so batching
/// adds no latency.
///
/// Both headers put the entry count at offset 8 and the client id at offset 11, where RESULT has
/// it: the sink routes a RESULTS exactly like a RESULT, without reading the body.
enum Batch {
    /// Bytes of the header before the client id: preamble, count, flags.
    static let headerFixedSize = Wire.preambleSize + 3

    /// JOBS flag (offset 10): every entry carries dispatch options after its handler name.
    static let optionsFlag: UInt8 = 0x01

    /// Starts a batch: its header, ended, with an entry count of 0 that `finish` replaces.
    fileprivate static func start(_ command: Wire.Command, clientID: [UInt8], flags: UInt8 = 0) -> ByteWriter {
        var w = ByteWriter(capacity: headerFixedSize + 1 + clientID.count + 4096)
        w.header(command)
        w.u16(0)
        w.u8(flags)
        w.short(clientID)
        w.endHeader()
        return w
    }

    /// The batch message with its entry count filled in.
    fileprivate static func finish(_ message: consuming ByteWriter, count: Int) -> [UInt8] {
        message.patchU16(UInt16(count), at: Wire.preambleSize)
        return message.bytes
    }

    /// Reads a batch header: the client id and the entry count (1 to `Wire.maxBatchEntries`).
    fileprivate static func decodeHeader(_ message: ReceivedMessage) throws(ProtocolViolation) -> (clientID: [UInt8], count: Int, flags: UInt8) {
        let command = message.command
        var r = message.header
        let count = Int(try r.u16())
        guard count >= 1 else { throw ProtocolViolation(.tooMany, "\(command) with no entries") }
        guard count <= Wire.maxBatchEntries else { throw ProtocolViolation(.tooMany, "\(count) entries") }
        let flags = try r.u8()
        return (try r.id("client id"), count, flags)
    }

    /// Reads `count` entries from `body` in order with `readEntry`, calling `each` with every
    /// one. Throws at the first damaged entry (with its job id when `readEntry` had read it), or
    /// when the body holds more than `count` entries, after the intact ones were delivered.
    fileprivate static func readEntries<Entry>(
        _ body: ByteReader, count: Int, _ readEntry: (inout ByteReader, inout EntryIdentity) throws(ProtocolViolation) -> Entry,
        _ each: (Entry) -> Void
    ) throws(DamagedEntry) {
        var r = body
        for _ in 0..<count {
            var identity = EntryIdentity()
            do throws(ProtocolViolation) {
                each(try readEntry(&r, &identity))
            } catch {
                throw DamagedEntry(violation: error, jobID: identity.jobID, attempt: identity.attempt)
            }
        }
        guard r.isAtEnd else { throw DamagedEntry(violation: ProtocolViolation(.trailing, "after \(count) entries"), jobID: nil) }
    }

    /// The entry count of a RESULT or RESULTS header the caller has already classified; 1 for
    /// a RESULT. The sink counts results with it without decoding the body.
    static func resultCount(inHeader header: [UInt8]) -> Int {
        let at = Wire.preambleSize
        guard header.count >= at + 2, header[3] == Wire.Command.results.rawValue else { return 1 }
        return Int(header[at]) << 8 | Int(header[at + 1])
    }
}

/// An entry of a batch that could not be read. Entries before it were delivered; entries after
/// it cannot be located and are lost to the receiver, which counts the message as malformed.
struct DamagedEntry: Error, Sendable {
    let violation: ProtocolViolation
    /// The damaged entry's job id, when it could still be read: a worker answers `badRequest`.
    let jobID: [UInt8]?
    /// The damaged entry's attempt number, when it could be read (else 1), for that answer.
    var attempt: UInt16 = 1
}

/// What a reader learned of an entry before it found damage in it.
struct EntryIdentity {
    var jobID: [UInt8]?
    var attempt: UInt16 = 1

    /// Reads the attempt number and job id that JOBS and RESULTS entries share, remembering each
    /// as soon as it is read, so damage further on can still be answered for that job.
    mutating func readAttemptAndID(_ r: inout ByteReader) throws(ProtocolViolation) -> (attempt: UInt16, jobID: [UInt8]) {
        let attempt = try r.u16()
        self.attempt = attempt
        let id = try r.id("job id")
        jobID = id
        return (attempt, id)
    }
}

/// Builds a JOBS message from the jobs a client sends in one go.
struct JobBatchWriter {
    let clientID: [UInt8]
    /// Most entries this batch takes (at most `Wire.batchEntries`).
    let maxEntries: Int
    /// Whether every entry carries its dispatch options (a client's JOBS to a broker).
    let withOptions: Bool
    /// The message so far: the header, then the entries.
    private var message: ByteWriter
    private let headerSize: Int
    private(set) var count = 0

    init(clientID: [UInt8], maxEntries: Int = Wire.batchEntries, withOptions: Bool = false) {
        self.clientID = clientID
        self.maxEntries = min(maxEntries, Wire.batchEntries)
        self.withOptions = withOptions
        message = Batch.start(.jobs, clientID: clientID, flags: withOptions ? Batch.optionsFlag : 0)
        headerSize = message.count
    }

    /// The bytes of the entries so far.
    private var bodySize: Int { message.count - headerSize }

    /// The bytes a job adds to a batch's body, without options.
    static func entrySize(jobID: [UInt8], handler: String, payload: [UInt8]) -> Int {
        8 + 2 + 1 + jobID.count + 1 + handler.utf8.count + 4 + payload.count
    }

    /// Whether a job of `entrySize` bytes and a payload of `payloadSize` fits this batch.
    func fits(entrySize: Int, payloadSize: Int) -> Bool {
        count < maxEntries && payloadSize <= Wire.batchablePayload && bodySize + entrySize <= Wire.batchBytes
    }

    /// Appends the job when it fits this batch; false (and nothing appended) when it does not.
    mutating func appendIfItFits(jobID: [UInt8], handler: String, deadline: UInt64, attempt: UInt16, payload: [UInt8],
                                 options: DispatchOptions = .standard) -> Bool {
        let size = Self.entrySize(jobID: jobID, handler: handler, payload: payload) + (withOptions ? options.encodedSize : 0)
        guard fits(entrySize: size, payloadSize: payload.count) else { return false }
        append(jobID: jobID, handler: handler, deadline: deadline, attempt: attempt, payload: payload, options: options)
        return true
    }

    /// The first jobs of `jobs` as one message: as many as fit one JOBS while they share the
    /// first one's client, or the first alone as a JOB when no second one fits. Nil when empty.
    static func firstMessage(of jobs: some Collection<JobMessage>) -> (frame: [UInt8], count: Int)? {
        guard let first = jobs.first else { return nil }
        var batch = JobBatchWriter(clientID: first.clientID)
        // By index rather than by element: each job is read in place, not copied out (its ids,
        // handler name and payload each a reference count).
        var index = jobs.startIndex
        while index != jobs.endIndex {
            guard jobs[index].clientID == first.clientID, jobs[index].retry == nil, first.retry == nil,
                  batch.appendIfItFits(jobID: jobs[index].jobID, handler: jobs[index].handler, deadline: jobs[index].deadline,
                                       attempt: jobs[index].attempt, payload: jobs[index].payload)
            else { break }
            jobs.formIndex(after: &index)
        }
        // Several: a JOBS. One, or none (the first is too large to batch): the first alone.
        let count = batch.count
        guard count <= 1 else { return (batch.encode(), count) }
        var lone = first
        lone.options = .standard  // a worker is sent no dispatch options (docs/PROTOCOL.md 5.1); a retry policy stays
        return (lone.encode(), 1)
    }

    mutating func append(jobID: [UInt8], handler: String, deadline: UInt64, attempt: UInt16, payload: [UInt8],
                         options: DispatchOptions = .standard) {
        message.u64(deadline)
        message.u16(attempt)
        message.short(jobID)
        message.short(handler)
        if withOptions { options.encode(into: &message) }
        message.long(payload)
        count += 1
    }

    /// The JOBS message.
    consuming func encode() -> [UInt8] {
        Batch.finish(message, count: count)
    }
}

/// A received JOBS message whose header is valid; its entries are read by `forEach`.
struct JobBatch: Equatable, Sendable {
    let clientID: [UInt8]
    let count: Int
    /// Whether each entry carries dispatch options (`Batch.optionsFlag`).
    let withOptions: Bool
    private let message: ReceivedMessage

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> JobBatch {
        let message = try ReceivedMessage(frame, expecting: .jobs)
        let (clientID, count, flags) = try Batch.decodeHeader(message)
        return JobBatch(clientID: clientID, count: count, withOptions: flags & Batch.optionsFlag != 0, message: message)
    }

    /// Calls `each` with every job in order. Throws at the first damaged entry, or when the body
    /// holds more or fewer entries than the header counts, after the intact ones were delivered.
    func forEach(_ each: (JobMessage) -> Void) throws(DamagedEntry) {
        let clientID = self.clientID, withOptions = self.withOptions
        var lastHandler: String?
        try Batch.readEntries(message.bodyReader, count: count, { (r, identity) throws(ProtocolViolation) in
            let deadline = try r.u64()
            let (attempt, id) = try identity.readAttemptAndID(&r)
            let handler = try r.text("handler name", sameAs: lastHandler)
            lastHandler = handler
            let options = withOptions ? try DispatchOptions.decode(&r) : .standard
            let payload = try r.long()
            return JobMessage(clientID: clientID, jobID: id, handler: handler, deadline: deadline, attempt: attempt, payload: payload,
                              options: options)
        }, each)
    }
}

/// Builds a RESULTS message from results for one client.
struct ResultBatchWriter {
    let clientID: [UInt8]
    /// The message so far: the header, then the entries.
    private var message: ByteWriter
    private let headerSize: Int
    private(set) var count = 0

    init(clientID: [UInt8]) {
        self.clientID = clientID
        message = Batch.start(.results, clientID: clientID)
        headerSize = message.count
    }

    /// The bytes a result adds to a batch's body.
    static func entrySize(_ result: ResultMessage) -> Int {
        1 + 2 + 1 + result.jobID.count + 4 + result.body.count
    }

    /// Whether `result` may join this batch: same client, small body, room left.
    func fits(_ result: ResultMessage) -> Bool {
        count < Wire.batchEntries && result.body.count <= Wire.batchablePayload && result.clientID == clientID
            && message.count - headerSize + Self.entrySize(result) <= Wire.batchBytes
    }

    /// The first results of `results` as one message: as many as fit one RESULTS for the first
    /// one's client, or the first alone as a RESULT when no second one fits. Nil when empty.
    static func firstMessage(of results: some Collection<ResultMessage>) -> (frame: [UInt8], count: Int)? {
        guard let first = results.first else { return nil }
        var batch = ResultBatchWriter(clientID: first.clientID)
        // By index rather than by element, as for jobs: each result is read in place.
        var index = results.startIndex
        while index != results.endIndex, batch.fits(results[index]) {
            batch.append(results[index])
            results.formIndex(after: &index)
        }
        let count = batch.count
        return count > 1 ? (batch.encode(), count) : (first.encode(), 1)
    }

    mutating func append(_ result: ResultMessage) {
        message.u8(result.status.rawValue)
        message.u16(result.attempt)
        message.short(result.jobID)
        message.long(result.body)
        count += 1
    }

    /// The RESULTS message.
    consuming func encode() -> [UInt8] {
        Batch.finish(message, count: count)
    }
}

/// A received RESULTS message whose header is valid; its entries are read by `forEach`.
struct ResultBatch: Equatable, Sendable {
    let clientID: [UInt8]
    let count: Int
    private let message: ReceivedMessage

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> ResultBatch {
        let message = try ReceivedMessage(frame, expecting: .results)
        let (clientID, count, _) = try Batch.decodeHeader(message)
        return ResultBatch(clientID: clientID, count: count, message: message)
    }

    /// Calls `each` with every result in order. Throws at the first damaged entry, or when the
    /// body holds more or fewer entries than the header counts, after the intact ones were
    /// delivered.
    func forEach(_ each: (ResultMessage) -> Void) throws(DamagedEntry) {
        let clientID = self.clientID
        try Batch.readEntries(message.bodyReader, count: count, { (r, identity) throws(ProtocolViolation) in
            let rawStatus = try r.u8()
            let (attempt, id) = try identity.readAttemptAndID(&r)
            let resultBody = try r.long()
            guard let status = ResultStatus(rawValue: rawStatus) else { throw ProtocolViolation(.status, "status \(rawStatus)") }
            return ResultMessage(status: status, attempt: attempt, clientID: clientID, jobID: id, body: resultBody)
        }, each)
    }
}
