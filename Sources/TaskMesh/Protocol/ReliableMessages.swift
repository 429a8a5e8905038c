// The commands of reliable mode (docs/PROTOCOL.md, section 6) and what each side of a broker
// can receive.

/// READY (reliable mode): a worker tells the broker it takes up to `concurrency` jobs at once.
/// Sent on connecting and again whenever the broker it talks to changed. A header alone.
struct ReadyMessage: Equatable, Sendable {
    var workerID: [UInt8]
    var concurrency: UInt16
    /// The handlers and labels it serves; `.unknown` from a worker that sent none.
    var capabilities: Capabilities = .unknown

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 11 + workerID.count + capabilities.encodedSize)
        w.header(.ready)
        w.u16(concurrency)
        w.short(workerID)
        if capabilities != .unknown { capabilities.encode(into: &w) }
        return w.frame()
    }

    static func decode(_ message: ReceivedMessage) throws(ProtocolViolation) -> ReadyMessage {
        try message.requireNoBody()
        var r = message.header
        let concurrency = try r.u16()
        let workerID = try r.id("worker id")
        return ReadyMessage(workerID: workerID, concurrency: concurrency, capabilities: try Capabilities.decode(&r))
    }
}

/// HEARTBEAT (reliable mode). From the broker it carries the broker's instance id (new on every
/// start, so peers notice a restart), how many workers are ready, and, in the answer to a
/// worker's probe (`WorkerHeartbeat.probe`), that probe (`echo`); from clients it carries
/// nothing (both fields zero; a worker's is a `WorkerHeartbeat`). A header alone.
struct HeartbeatMessage: Equatable, Sendable {
    var instance: UInt64 = 0
    var workers: UInt16 = 0
    var echo: UInt32?

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 22)
        w.header(.heartbeat)
        w.u64(instance)
        w.u16(workers)
        if let echo { w.u32(echo) }
        return w.frame()
    }

    static func decode(_ message: ReceivedMessage) throws(ProtocolViolation) -> HeartbeatMessage {
        try message.requireNoBody()
        var r = message.header
        if r.isAtEnd { return HeartbeatMessage() }  // a peer's heartbeat may omit the fields
        let instance = try r.u64()
        let workers = try r.u16()
        return HeartbeatMessage(instance: instance, workers: workers, echo: r.isAtEnd ? nil : try r.u32())
    }
}

/// A worker's HEARTBEAT (reliable mode): it also says how many jobs the worker holds, accepted
/// and not yet answered on the wire (queued for a runner, running, or with a result waiting to
/// leave), so that the broker can free the slots of attempts it gave up on that the worker does
/// not hold (lost on the way, or with their result). It may carry a `probe` (any value; the
/// worker's clock in microseconds), which the broker sends back at once in its own HEARTBEAT,
/// so the worker measures its round trip to the broker. A header alone.
struct WorkerHeartbeat: Equatable, Sendable {
    var held: UInt32
    var probe: UInt32?

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Wire.preambleSize + 8)
        w.header(.heartbeat)
        w.u32(held)
        if let probe { w.u32(probe) }
        return w.frame()
    }

    /// The heartbeat's count and probe, or nil for the bare preamble (a worker that reports none).
    static func decode(_ message: ReceivedMessage) throws(ProtocolViolation) -> WorkerHeartbeat? {
        try message.requireNoBody()
        var r = message.header
        if r.isAtEnd { return nil }
        let held = try r.u32()
        let probe = r.isAtEnd ? nil : try r.u32()
        try r.requireEnd()
        return WorkerHeartbeat(held: held, probe: probe)
    }
}

/// What a broker can receive from a worker (reliable mode).
enum WorkerToBroker: Equatable, Sendable {
    case ready(ReadyMessage)
    case result(ResultMessage)
    case results(ResultBatch)
    case progress(ProgressMessage)
    /// HEARTBEAT, with the jobs the worker holds (nil: not reported) and its probe (nil: none).
    case heartbeat(held: UInt32?, probe: UInt32? = nil)
    case bye
    case disconnect

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> WorkerToBroker {
        let message = try ReceivedMessage(frame)
        switch message.command {
        case .result: return .result(try ResultMessage.decode(frame))
        case .results: return .results(try ResultBatch.decode(frame))
        case .progress: return .progress(try ProgressMessage.decode(frame))
        case .ready: return .ready(try ReadyMessage.decode(message))
        case .heartbeat:
            let heartbeat = try WorkerHeartbeat.decode(message)
            return .heartbeat(held: heartbeat?.held, probe: heartbeat?.probe)
        case .bye:
            try message.requireNoBody()
            return .bye
        case .disconnect:
            try message.requireNoBody()
            return .disconnect
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

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> FromBroker {
        let message = try ReceivedMessage(frame)
        switch message.command {
        case .job: return .job(try JobMessage.decode(frame))
        case .jobs: return .jobs(try JobBatch.decode(frame))
        case .result: return .result(try ResultMessage.decode(frame))
        case .results: return .results(try ResultBatch.decode(frame))
        case .heartbeat: return .heartbeat(try HeartbeatMessage.decode(message))
        case .disconnect:
            try message.requireNoBody()
            return .disconnect
        case .cancel: return .cancel(try CancelMessage.decode(frame))
        case .progress: return .progress(try ProgressMessage.decode(frame))
        default: throw ProtocolViolation(.command, "a broker sends JOB, JOBS, RESULT, RESULTS, PROGRESS, CANCEL, HEARTBEAT or DISCONNECT")
        }
    }
}
