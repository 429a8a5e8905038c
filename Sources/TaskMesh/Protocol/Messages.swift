/// How a job ended at its worker, carried in every RESULT (docs/PROTOCOL.md, "RESULT").
enum ResultStatus: UInt8, Sendable, CaseIterable {
    /// The handler returned; the body is its result.
    case ok = 0
    /// No handler has that name; the body names it.
    case unknownHandler = 1
    /// The handler's validate step refused the job; the body is its message.
    case rejected = 2
    /// The handler threw; the body is its message.
    case failed = 3
    /// The worker could not read the job; the body says why.
    case badRequest = 4
    /// The worker is stopping and never started the job; the client may send it elsewhere.
    case declined = 5
    /// Reliable mode: the broker's queue is full; the job was not accepted.
    case overloaded = 6
    /// Reliable mode: every allowed attempt ended without a result; the body names the last cause.
    case exhausted = 7
    /// Reliable mode: no live worker has the job's handler and labels, and none joined within
    /// `broker.unroutable_timeout` (or the job's deadline); the body names what was missing.
    case unroutable = 8
    /// The worker skipped the job unstarted: its deadline had passed before a runner was free.
    /// The answer frees the job's slot at a broker; the client has already timed the job out.
    case expired = 9
    /// The job was cancelled by its submitter (CANCEL) before it finished: never started, or
    /// its handler was cancelled. The answer frees the job's slot at a broker; the client has
    /// already ended the job `cancelled`.
    case cancelled = 10
    /// The handler failed in a way its retry policy retries; the body (`RetryAnswer`) holds
    /// the delay before the next attempt and the error. The job's client (direct mode) or the
    /// broker (reliable mode) runs it again, as attempt + 1.
    case retry = 11
}

/// JOB: a client asks a worker to run `handler` on `payload`. Header, then the payload as body.
struct JobMessage: Equatable, Sendable {
    var clientID: [UInt8]
    var jobID: [UInt8]
    var handler: String
    /// The deadline field as on the wire (`WireDeadline`): the relative form
    /// (`WireDeadline.relativeFlag | ms`, time remaining from receipt), the absolute form of
    /// earlier revisions (ms since the Unix epoch), or 0 for none. Codecs carry it unchanged;
    /// receivers turn it into a local monotonic deadline with `WireDeadline.local`.
    var deadline: UInt64
    /// 1 for the first attempt; a broker counts retries up from there.
    var attempt: UInt16
    var payload: [UInt8]
    /// Priority and required labels; written only when not the standard ones (or when a
    /// retry policy follows them).
    var options: DispatchOptions = .standard
    /// The job's own retry policy, if it has one. Such a job always travels as a JOB, never
    /// inside a JOBS.
    var retry: RetryOverride? = nil

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 24 + clientID.count + jobID.count + handler.utf8.count + payload.count
                                     + (retry == nil ? 0 : 2 + WireRetry.size + options.encodedSize))
        w.header(.job)
        w.u64(deadline)
        w.u16(attempt)
        w.short(clientID)
        w.short(jobID)
        w.short(handler)
        if !options.isStandard || retry != nil { options.encode(into: &w) }
        if let retry {
            w.u8(WireRetry.tag)
            w.u8(UInt8(WireRetry.size))
            WireRetry.encode(retry.policy, into: &w)
        }
        return w.frame(body: payload)
    }

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> JobMessage {
        let message = try ReceivedMessage(frame, expecting: .job)
        var r = message.header
        let deadline = try r.u64()
        let attempt = try r.u16()
        let clientID = try r.id("client id")
        let jobID = try r.id("job id")
        let handler = try r.text("handler name")
        let options = r.isAtEnd ? DispatchOptions.standard : try DispatchOptions.decode(&r)
        let retry = try WireRetry.find(in: &r).map(RetryOverride.init)
        return JobMessage(clientID: clientID, jobID: jobID, handler: handler, deadline: deadline, attempt: attempt, payload: message.body,
                          options: options, retry: retry)
    }

    /// Reads the sender and job id of a JOB whose later fields are damaged, so a worker can still
    /// answer `badRequest` to the right client. Nil when even those cannot be read.
    static func salvageIDs(_ frame: [UInt8]) -> (clientID: [UInt8], jobID: [UInt8])? {
        guard let message = try? ReceivedMessage(frame, expecting: .job) else { return nil }
        var r = message.header
        guard (try? r.skip(10)) != nil else { return nil }  // deadline, attempt
        guard let clientID = try? r.id("client id"), let jobID = try? r.id("job id") else { return nil }
        return (clientID, jobID)
    }
}

/// RESULT: a worker reports a job's outcome; the sink forwards it unchanged to the client.
/// Header, then the outcome's body.
struct ResultMessage: Equatable, Sendable {
    var status: ResultStatus
    var attempt: UInt16
    var clientID: [UInt8]
    var jobID: [UInt8]
    var body: [UInt8]

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 14 + clientID.count + jobID.count + body.count)
        w.header(.result)
        w.u8(status.rawValue)
        w.u16(attempt)
        w.short(clientID)
        w.short(jobID)
        return w.frame(body: body)
    }

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> ResultMessage {
        let message = try ReceivedMessage(frame, expecting: .result)
        var r = message.header
        let rawStatus = try r.u8()
        guard let status = ResultStatus(rawValue: rawStatus) else { throw ProtocolViolation(.status, "status \(rawStatus)") }
        let attempt = try r.u16()
        let clientID = try r.id("client id")
        let jobID = try r.id("job id")
        return ResultMessage(status: status, attempt: attempt, clientID: clientID, jobID: jobID, body: message.body)
    }

    /// Where RESULT, RESULTS and PROGRESS headers hold the client id.
    static let clientIDOffset = Wire.preambleSize + 3

    /// The client id of a RESULT, RESULTS or PROGRESS, read from the first bytes of the message
    /// (`header`, whose preamble the caller checked) without decoding the rest: the sink's fast
    /// path.
    static func clientID(inHeader header: [UInt8], headerLength: Int) throws(ProtocolViolation) -> [UInt8] {
        var r = ByteReader(header, offset: clientIDOffset, end: min(header.count, headerLength))
        return try r.id("client id")
    }
}

/// ANNOUNCE: a worker tells the sink it is alive and where clients reach it. Sent at start and
/// every heartbeat interval. A header alone.
struct AnnounceMessage: Equatable, Sendable {
    var workerID: [UInt8]
    var endpoint: String
    var concurrency: UInt16
    /// The worker's CURVE public key (32 bytes) when the mesh is secure, else empty. Clients
    /// need it to connect to the worker.
    var publicKey: [UInt8] = []
    /// The handlers and labels it serves; `.unknown` from a worker that sent none.
    var capabilities: Capabilities = .unknown

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 13 + workerID.count + endpoint.utf8.count + publicKey.count + capabilities.encodedSize)
        w.header(.announce)
        w.u16(concurrency)
        w.short(workerID)
        w.short(endpoint)
        w.short(publicKey)
        if capabilities != .unknown { capabilities.encode(into: &w) }
        return w.frame()
    }

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> AnnounceMessage {
        let message = try ReceivedMessage(frame, expecting: .announce)
        try message.requireNoBody()
        var r = message.header
        let concurrency = try r.u16()
        let workerID = try r.id("worker id")
        let endpoint = try r.text("endpoint")
        let publicKey = try r.short()
        let capabilities = try Capabilities.decode(&r)
        return AnnounceMessage(workerID: workerID, endpoint: endpoint, concurrency: concurrency, publicKey: publicKey,
                               capabilities: capabilities)
    }
}

/// BYE: a stopping worker leaves the mesh at once. A header alone.
struct ByeMessage: Equatable, Sendable {
    var workerID: [UInt8]

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 9 + workerID.count)
        w.header(.bye)
        w.short(workerID)
        return w.frame()
    }

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> ByeMessage {
        let message = try ReceivedMessage(frame, expecting: .bye)
        try message.requireNoBody()
        var r = message.header
        return ByeMessage(workerID: try r.id("worker id"))
    }
}

/// HELLO: a client tells the sink it is alive (and so wants membership updates). Sent at start
/// and every heartbeat interval. A header alone.
struct HelloMessage: Equatable, Sendable {
    func encode() -> [UInt8] { bareCommand(.hello) }
}

/// MEMBERS: the sink's full list of live workers, sent to each client on change and every
/// heartbeat interval. Header (with the capability table), then the list as body.
struct MembersMessage: Equatable, Sendable {
    struct Member: Equatable, Sendable {
        var workerID: [UInt8]
        var endpoint: String
        var concurrency: UInt16
        /// The worker's CURVE public key when the mesh is secure, else empty.
        var publicKey: [UInt8] = []
        /// Its handlers and labels; `.unknown` for a worker that advertised none.
        var capabilities: Capabilities = .unknown
    }

    /// Header flag: the list of `epoch` stands unchanged and the body lists nobody.
    static let unchangedFlag: UInt8 = 0x01
    /// Header flag: a capability table for the listed members follows the flags byte.
    static let capabilitiesFlag: UInt8 = 0x02

    /// Increases whenever the list changes; lets a client skip a list it already applied.
    var epoch: UInt64
    var members: [Member]
    /// A refresh that lists nobody and means "the list of `epoch` still stands" (sent on
    /// heartbeats to a client that already has that list). Receivers that hold another epoch
    /// ignore it and wait for a full list.
    var unchanged = false

    func encode() -> [UInt8] {
        let table = !unchanged && members.contains { $0.capabilities != .unknown }
        var header = ByteWriter(capacity: 19 + members.count * 48 + (table ? members.reduce(0) { $0 + $1.capabilities.encodedSize } : 0))
        header.header(.members)
        header.u64(epoch)
        header.u8((unchanged ? Self.unchangedFlag : 0) | (table ? Self.capabilitiesFlag : 0))
        if table {
            for member in members { member.capabilities.encode(into: &header) }
        }
        if unchanged { return header.frame(body: [0, 0]) }
        var body = ByteWriter(capacity: 2 + members.count * 48)
        body.u16(UInt16(members.count))
        for member in members {
            body.short(member.workerID)
            body.short(member.endpoint)
            body.u16(member.concurrency)
            body.short(member.publicKey)
        }
        return header.frame(body: body.bytes)
    }

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> MembersMessage {
        let message = try ReceivedMessage(frame, expecting: .members)
        var h = message.header
        let epoch = try h.u64()
        let flags = h.isAtEnd ? 0 : try h.u8()
        var r = message.bodyReader
        let count = Int(try r.u16())
        guard count <= Wire.maxMembers else { throw ProtocolViolation(.tooMany, "\(count) members") }
        var members: [Member] = []
        members.reserveCapacity(count)
        for _ in 0..<count {
            let workerID = try r.id("worker id")
            let endpoint = try r.text("endpoint")
            let concurrency = try r.u16()
            let publicKey = try r.short()
            members.append(Member(workerID: workerID, endpoint: endpoint, concurrency: concurrency, publicKey: publicKey))
        }
        try r.requireEnd()
        let unchanged = flags & unchangedFlag != 0
        guard !unchanged || members.isEmpty else { throw ProtocolViolation(.trailing, "an unchanged MEMBERS lists workers") }
        if flags & capabilitiesFlag != 0 {
            for index in members.indices {
                guard !h.isAtEnd else { throw ProtocolViolation(.truncated, "capability table of \(index) of \(count) members") }
                members[index].capabilities = try Capabilities.decode(&h)
            }
        }
        return MembersMessage(epoch: epoch, members: members, unchanged: unchanged)
    }
}

/// Commands without fields (HELLO, HEARTBEAT from clients and workers, DISCONNECT).
func bareCommand(_ command: Wire.Command) -> [UInt8] {
    var w = ByteWriter(capacity: Wire.preambleSize)
    w.header(command)
    return w.frame()
}

/// What a sink can receive on its results socket from workers.
enum WorkerToSink: Equatable, Sendable {
    /// A RESULT or RESULTS for `clientID`, holding `count` results.
    case result(clientID: [UInt8], count: Int)
    /// A PROGRESS for `clientID`, forwarded as it is.
    case progress(clientID: [UInt8])
    case announce(AnnounceMessage)
    case bye(ByeMessage)

    /// How many leading bytes of a message `decode(prefix:count:whole:)` needs to route a RESULT,
    /// RESULTS or PROGRESS: up to the end of the longest client id.
    static let routingPrefix = ResultMessage.clientIDOffset + 1 + Wire.maxIDLength

    /// Classifies a worker message of `count` bytes from its first bytes (`prefix`, at least
    /// `routingPrefix` of them or the whole message). RESULT, RESULTS and PROGRESS are only
    /// checked as far as routing needs: the sink forwards them as they are and the client decodes
    /// them fully. ANNOUNCE and BYE are decoded from the whole message, which `whole` supplies.
    static func decode(prefix: [UInt8], count: Int, whole: () -> [UInt8]) throws(ProtocolViolation) -> WorkerToSink {
        let command = try ByteReader.command(of: prefix, count: count)
        switch command {
        case .result, .results:
            let results = Batch.resultCount(inHeader: prefix)
            guard results >= 1 && results <= Wire.maxBatchEntries else { throw ProtocolViolation(.tooMany, "\(results) results") }
            let headerLength = try ByteReader.headerLength(of: prefix, count: count)
            return .result(clientID: try ResultMessage.clientID(inHeader: prefix, headerLength: headerLength), count: results)
        case .progress:
            let headerLength = try ByteReader.headerLength(of: prefix, count: count)
            return .progress(clientID: try ResultMessage.clientID(inHeader: prefix, headerLength: headerLength))
        case .announce:
            return .announce(try AnnounceMessage.decode(whole()))
        case .bye:
            return .bye(try ByeMessage.decode(whole()))
        default:
            throw ProtocolViolation(.command, "a worker may send RESULT, RESULTS, PROGRESS, ANNOUNCE or BYE")
        }
    }

    /// Classifies a whole worker message.
    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> WorkerToSink {
        try decode(prefix: frame, count: frame.count, whole: { frame })
    }
}

/// What a client can receive from the sink.
enum SinkToClient: Equatable, Sendable {
    case result(ResultMessage)
    case results(ResultBatch)
    case members(MembersMessage)
    case progress(ProgressMessage)

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> SinkToClient {
        switch try ByteReader.command(of: frame) {
        case .result: return .result(try ResultMessage.decode(frame))
        case .results: return .results(try ResultBatch.decode(frame))
        case .members: return .members(try MembersMessage.decode(frame))
        case .progress: return .progress(try ProgressMessage.decode(frame))
        default: throw ProtocolViolation(.command, "a sink sends RESULT, RESULTS, PROGRESS or MEMBERS")
        }
    }
}
