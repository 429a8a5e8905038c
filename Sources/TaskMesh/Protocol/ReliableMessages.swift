// The commands of reliable mode (docs/PROTOCOL.md, section 6) and what each side of a broker
// can receive.

/// READY (reliable mode): a worker tells the broker it takes up to `concurrency` jobs at once.
/// Sent on connecting and again whenever the broker it talks to changed. Frames: [header].
struct ReadyMessage: Equatable, Sendable {
    var workerID: [UInt8]
    var concurrency: UInt16
    /// The handlers and labels it serves; `.unknown` from a worker that sent none.
    var capabilities: Capabilities = .unknown

    func encode() -> [[UInt8]] {
        var w = ByteWriter(capacity: 7 + workerID.count + capabilities.encodedSize)
        w.header(.ready)
        w.u16(concurrency)
        w.short(workerID)
        if capabilities != .unknown { capabilities.encode(into: &w) }
        return [w.bytes]
    }

    static func decode(header: [UInt8]) throws(ProtocolViolation) -> ReadyMessage {
        var r = ByteReader(header, offset: 4)
        let concurrency = try r.u16()
        let workerID = try r.id("worker id")
        return ReadyMessage(workerID: workerID, concurrency: concurrency, capabilities: try Capabilities.decode(&r))
    }
}

/// HEARTBEAT (reliable mode). From the broker it carries the broker's instance id (new on every
/// start, so peers notice a restart) and how many workers are ready; from clients and workers it
/// carries nothing (both fields zero). Frames: [header].
struct HeartbeatMessage: Equatable, Sendable {
    var instance: UInt64 = 0
    var workers: UInt16 = 0

    func encode() -> [[UInt8]] {
        var w = ByteWriter(capacity: 14)
        w.header(.heartbeat)
        w.u64(instance)
        w.u16(workers)
        return [w.bytes]
    }

    static func decode(header: [UInt8]) throws(ProtocolViolation) -> HeartbeatMessage {
        var r = ByteReader(header, offset: 4)
        if r.isAtEnd { return HeartbeatMessage() }  // a peer's heartbeat may omit the fields
        let instance = try r.u64()
        return HeartbeatMessage(instance: instance, workers: try r.u16())
    }
}

/// What a broker can receive from a worker (reliable mode).
enum WorkerToBroker: Equatable, Sendable {
    case ready(ReadyMessage)
    case result(ResultMessage)
    case results(ResultBatch)
    case progress(ProgressMessage)
    case heartbeat
    case bye
    case disconnect

    static func decode(_ frames: [[UInt8]]) throws(ProtocolViolation) -> WorkerToBroker {
        guard let header = frames.first else { throw ProtocolViolation(.frameCount, "empty message") }
        let command = try ByteReader.command(of: header)
        if command == .result { return .result(try ResultMessage.decode(frames)) }
        if command == .results { return .results(try ResultBatch.decode(frames)) }
        if command == .progress { return .progress(try ProgressMessage.decode(frames)) }
        guard frames.count == 1 else { throw ProtocolViolation(.frameCount, "\(command) has 1 frame, got \(frames.count)") }
        switch command {
        case .ready: return .ready(try ReadyMessage.decode(header: header))
        case .heartbeat: return .heartbeat
        case .bye: return .bye
        case .disconnect: return .disconnect
        default: throw ProtocolViolation(.command, "a worker may send READY, RESULT, RESULTS, PROGRESS, HEARTBEAT, BYE or DISCONNECT")
        }
    }
}

/// What a client or worker can receive from a broker (reliable mode).
enum FromBroker: Equatable, Sendable {
    case job(JobMessage)
    case jobs(JobBatch)
    case result(ResultMessage)
    case results(ResultBatch)
    case heartbeat(HeartbeatMessage)
    case disconnect
    /// To a worker: stop that job.
    case cancel(CancelMessage)
    /// To a client: how far its job has got.
    case progress(ProgressMessage)

    static func decode(_ frames: [[UInt8]]) throws(ProtocolViolation) -> FromBroker {
        guard let header = frames.first else { throw ProtocolViolation(.frameCount, "empty message") }
        switch try ByteReader.command(of: header) {
        case .job: return .job(try JobMessage.decode(frames))
        case .jobs: return .jobs(try JobBatch.decode(frames))
        case .result: return .result(try ResultMessage.decode(frames))
        case .results: return .results(try ResultBatch.decode(frames))
        case .heartbeat:
            guard frames.count == 1 else { throw ProtocolViolation(.frameCount, "HEARTBEAT has 1 frame, got \(frames.count)") }
            return .heartbeat(try HeartbeatMessage.decode(header: header))
        case .disconnect:
            guard frames.count == 1 else { throw ProtocolViolation(.frameCount, "DISCONNECT has 1 frame, got \(frames.count)") }
            return .disconnect
        case .cancel: return .cancel(try CancelMessage.decode(frames))
        case .progress: return .progress(try ProgressMessage.decode(frames))
        default: throw ProtocolViolation(.command, "a broker sends JOB, JOBS, RESULT, RESULTS, PROGRESS, CANCEL, HEARTBEAT or DISCONNECT")
        }
    }
}
