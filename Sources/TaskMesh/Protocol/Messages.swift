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

/// JOB: a client asks a worker to run `handler` on `payload`. Frames: [header, payload].
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

    func encode() -> [[UInt8]] {
        var w = ByteWriter(capacity: 16 + clientID.count + jobID.count + handler.utf8.count)
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
        return [w.bytes, payload]
    }

    static func decode(_ frames: [[UInt8]]) throws(ProtocolViolation) -> JobMessage {
        guard frames.count == 2 else { throw ProtocolViolation(.frameCount, "JOB has 2 frames, got \(frames.count)") }
        guard try ByteReader.command(of: frames[0]) == .job else { throw ProtocolViolation(.command, "expected JOB") }
        var r = ByteReader(frames[0], offset: 4)
        let deadline = try r.u64()
        let attempt = try r.u16()
        let clientID = try r.id("client id")
        let jobID = try r.id("job id")
        let handler = try r.text("handler name")
        let options = r.isAtEnd ? DispatchOptions.standard : try DispatchOptions.decode(&r)
        let retry = try WireRetry.find(in: &r).map(RetryOverride.init)
        return JobMessage(clientID: clientID, jobID: jobID, handler: handler, deadline: deadline, attempt: attempt, payload: frames[1],
                          options: options, retry: retry)
    }

    /// Reads the sender and job id of a JOB whose later fields are damaged, so a worker can still
    /// answer `badRequest` to the right client. Nil when even those cannot be read.
    static func salvageIDs(_ frames: [[UInt8]]) -> (clientID: [UInt8], jobID: [UInt8])? {
        guard let header = frames.first, (try? ByteReader.command(of: header)) == .job else { return nil }
        var r = ByteReader(header, offset: 14)
        guard let clientID = try? r.id("client id"), let jobID = try? r.id("job id") else { return nil }
        return (clientID, jobID)
    }
}

/// RESULT: a worker reports a job's outcome; the sink forwards it unchanged to the client.
/// Frames: [header, body].
struct ResultMessage: Equatable, Sendable {
    var status: ResultStatus
    var attempt: UInt16
    var clientID: [UInt8]
    var jobID: [UInt8]
    var body: [UInt8]

    func encode() -> [[UInt8]] {
        var w = ByteWriter(capacity: 10 + clientID.count + jobID.count)
        w.header(.result)
        w.u8(status.rawValue)
        w.u16(attempt)
        w.short(clientID)
        w.short(jobID)
        return [w.bytes, body]
    }

    static func decode(_ frames: [[UInt8]]) throws(ProtocolViolation) -> ResultMessage {
        guard frames.count == 2 else { throw ProtocolViolation(.frameCount, "RESULT has 2 frames, got \(frames.count)") }
        guard try ByteReader.command(of: frames[0]) == .result else { throw ProtocolViolation(.command, "expected RESULT") }
        var r = ByteReader(frames[0], offset: 4)
        let rawStatus = try r.u8()
        guard let status = ResultStatus(rawValue: rawStatus) else { throw ProtocolViolation(.status, "status \(rawStatus)") }
        let attempt = try r.u16()
        let clientID = try r.id("client id")
        let jobID = try r.id("job id")
        return ResultMessage(status: status, attempt: attempt, clientID: clientID, jobID: jobID, body: frames[1])
    }

    /// The client id of a RESULT header, read without decoding the rest: the sink's fast path.
    static func clientID(inHeader header: [UInt8]) throws(ProtocolViolation) -> [UInt8] {
        var r = ByteReader(header, offset: 7)
        return try r.id("client id")
    }
}

/// ANNOUNCE: a worker tells the sink it is alive and where clients reach it. Sent at start and
/// every heartbeat interval. Frames: [header].
struct AnnounceMessage: Equatable, Sendable {
    var workerID: [UInt8]
    var endpoint: String
    var concurrency: UInt16
    /// The worker's CURVE public key (32 bytes) when the mesh is secure, else empty. Clients
    /// need it to connect to the worker.
    var publicKey: [UInt8] = []
    /// The handlers and labels it serves; `.unknown` from a worker that sent none.
    var capabilities: Capabilities = .unknown

    func encode() -> [[UInt8]] {
        var w = ByteWriter(capacity: 9 + workerID.count + endpoint.utf8.count + publicKey.count + capabilities.encodedSize)
        w.header(.announce)
        w.u16(concurrency)
        w.short(workerID)
        w.short(endpoint)
        w.short(publicKey)
        if capabilities != .unknown { capabilities.encode(into: &w) }
        return [w.bytes]
    }

    static func decode(header: [UInt8]) throws(ProtocolViolation) -> AnnounceMessage {
        var r = ByteReader(header, offset: 4)
        let concurrency = try r.u16()
        let workerID = try r.id("worker id")
        let endpoint = try r.text("endpoint")
        let publicKey = try r.short()
        let capabilities = try Capabilities.decode(&r)
        return AnnounceMessage(workerID: workerID, endpoint: endpoint, concurrency: concurrency, publicKey: publicKey,
                               capabilities: capabilities)
    }
}

/// BYE: a stopping worker leaves the mesh at once. Frames: [header].
struct ByeMessage: Equatable, Sendable {
    var workerID: [UInt8]

    func encode() -> [[UInt8]] {
        var w = ByteWriter(capacity: 5 + workerID.count)
        w.header(.bye)
        w.short(workerID)
        return [w.bytes]
    }

    static func decode(header: [UInt8]) throws(ProtocolViolation) -> ByeMessage {
        var r = ByteReader(header, offset: 4)
        return ByeMessage(workerID: try r.id("worker id"))
    }
}

/// HELLO: a client tells the sink it is alive (and so wants membership updates). Sent at start
/// and every heartbeat interval. Frames: [header].
struct HelloMessage: Equatable, Sendable {
    func encode() -> [[UInt8]] {
        var w = ByteWriter(capacity: 4)
        w.header(.hello)
        return [w.bytes]
    }
}

/// MEMBERS: the sink's full list of live workers, sent to each client on change and every
/// heartbeat interval. Frames: [header, body].
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

    func encode() -> [[UInt8]] {
        let table = !unchanged && members.contains { $0.capabilities != .unknown }
        var header = ByteWriter(capacity: 13 + (table ? members.reduce(0) { $0 + $1.capabilities.encodedSize } : 0))
        header.header(.members)
        header.u64(epoch)
        header.u8((unchanged ? Self.unchangedFlag : 0) | (table ? Self.capabilitiesFlag : 0))
        if table {
            for member in members { member.capabilities.encode(into: &header) }
        }
        if unchanged { return [header.bytes, [0, 0]] }
        var body = ByteWriter(capacity: 2 + members.count * 48)
        body.u16(UInt16(members.count))
        for member in members {
            body.short(member.workerID)
            body.short(member.endpoint)
            body.u16(member.concurrency)
            body.short(member.publicKey)
        }
        return [header.bytes, body.bytes]
    }

    static func decode(_ frames: [[UInt8]]) throws(ProtocolViolation) -> MembersMessage {
        guard frames.count == 2 else { throw ProtocolViolation(.frameCount, "MEMBERS has 2 frames, got \(frames.count)") }
        guard try ByteReader.command(of: frames[0]) == .members else { throw ProtocolViolation(.command, "expected MEMBERS") }
        var h = ByteReader(frames[0], offset: 4)
        let epoch = try h.u64()
        let flags = h.isAtEnd ? 0 : try h.u8()
        var r = ByteReader(frames[1])
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

/// Header-only commands (HEARTBEAT from clients and workers, BYE, DISCONNECT).
func bareCommand(_ command: Wire.Command) -> [[UInt8]] {
    var w = ByteWriter(capacity: 4)
    w.header(command)
    return [w.bytes]
}

/// What a sink can receive on its results socket from workers.
enum WorkerToSink: Equatable, Sendable {
    /// A RESULT or RESULTS for `clientID`, holding `count` results.
    case result(clientID: [UInt8], count: Int)
    /// A PROGRESS for `clientID`, forwarded as it is.
    case progress(clientID: [UInt8])
    case announce(AnnounceMessage)
    case bye(ByeMessage)

    /// Classifies a worker message. RESULT and RESULTS are only checked as far as routing needs:
    /// the sink forwards the frames as they are and the client decodes them fully.
    static func decode(_ frames: [[UInt8]]) throws(ProtocolViolation) -> WorkerToSink {
        guard let header = frames.first else { throw ProtocolViolation(.frameCount, "empty message") }
        let command = try ByteReader.command(of: header)
        switch command {
        case .result, .results:
            guard frames.count == 2 else { throw ProtocolViolation(.frameCount, "\(command) has 2 frames, got \(frames.count)") }
            let count = Batch.resultCount(inHeader: header)
            guard count >= 1 && count <= Wire.maxBatchEntries else { throw ProtocolViolation(.tooMany, "\(count) results") }
            return .result(clientID: try ResultMessage.clientID(inHeader: header), count: count)
        case .progress:
            guard frames.count == 2 else { throw ProtocolViolation(.frameCount, "PROGRESS has 2 frames, got \(frames.count)") }
            return .progress(clientID: try ResultMessage.clientID(inHeader: header))
        case .announce:
            guard frames.count == 1 else { throw ProtocolViolation(.frameCount, "ANNOUNCE has 1 frame, got \(frames.count)") }
            return .announce(try AnnounceMessage.decode(header: header))
        case .bye:
            guard frames.count == 1 else { throw ProtocolViolation(.frameCount, "BYE has 1 frame, got \(frames.count)") }
            return .bye(try ByeMessage.decode(header: header))
        default:
            throw ProtocolViolation(.command, "a worker may send RESULT, RESULTS, PROGRESS, ANNOUNCE or BYE")
        }
    }
}

/// What a client can receive from the sink.
enum SinkToClient: Equatable, Sendable {
    case result(ResultMessage)
    case results(ResultBatch)
    case members(MembersMessage)
    case progress(ProgressMessage)

    static func decode(_ frames: [[UInt8]]) throws(ProtocolViolation) -> SinkToClient {
        guard let header = frames.first else { throw ProtocolViolation(.frameCount, "empty message") }
        switch try ByteReader.command(of: header) {
        case .result: return .result(try ResultMessage.decode(frames))
        case .results: return .results(try ResultBatch.decode(frames))
        case .members: return .members(try MembersMessage.decode(frames))
        case .progress: return .progress(try ProgressMessage.decode(frames))
        default: throw ProtocolViolation(.command, "a sink sends RESULT, RESULTS, PROGRESS or MEMBERS")
        }
    }
}
