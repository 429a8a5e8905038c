/// CANCEL: the submitter of a job no longer wants it (docs/PROTOCOL.md, "CANCEL"). Sent by a
/// client to the worker it sent the job to (direct mode) or to the broker (reliable mode), and
/// by the broker to the worker running the job. A header alone.
struct CancelMessage: Equatable, Sendable {
    var clientID: [UInt8]
    var jobID: [UInt8]

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 10 + clientID.count + jobID.count)
        w.header(.cancel)
        w.short(clientID)
        w.short(jobID)
        return w.frame()
    }

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> CancelMessage {
        let message = try ReceivedMessage(frame, expecting: .cancel)
        try message.requireNoBody()
        var r = message.header
        return CancelMessage(clientID: try r.id("client id"), jobID: try r.id("job id"))
    }
}

/// PROGRESS: how far a running job has got, from its handler (docs/PROTOCOL.md, "PROGRESS").
/// Travels the way of a RESULT (worker → sink → client, or worker → broker → client) with the
/// client id at the same offset, so the sink routes it without decoding. Header, then the detail
/// as body.
struct ProgressMessage: Equatable, Sendable {
    /// Longest detail a sender may attach, in bytes.
    static let maxDetail = 4096

    var attempt: UInt16
    var clientID: [UInt8]
    var jobID: [UInt8]
    var completed: UInt64
    var total: UInt64
    var detail: [UInt8]

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 29 + clientID.count + jobID.count + detail.count)
        w.header(.progress)
        w.u8(0)
        w.u16(attempt)
        w.short(clientID)
        w.short(jobID)
        w.u64(completed)
        w.u64(total)
        return w.frame(body: detail)
    }

    static func decode(_ frame: [UInt8]) throws(ProtocolViolation) -> ProgressMessage {
        let message = try ReceivedMessage(frame, expecting: .progress)
        var r = message.header
        _ = try r.u8()  // flags
        let attempt = try r.u16()
        let clientID = try r.id("client id")
        let jobID = try r.id("job id")
        let completed = try r.u64()
        let total = try r.u64()
        guard message.bodyCount <= maxDetail else { throw ProtocolViolation(.range, "a detail of \(message.bodyCount) bytes") }
        return ProgressMessage(attempt: attempt, clientID: clientID, jobID: jobID, completed: completed, total: total, detail: message.body)
    }
}

/// The body of a RESULT with status `retry`: when the job may run again, then why it failed.
/// `u32` milliseconds to wait before the next attempt, then the error as UTF-8.
struct RetryAnswer: Equatable, Sendable {
    var delay: Duration
    var message: [UInt8]

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 4 + message.count)
        w.u32(UInt32(clamping: delay.wholeMilliseconds))
        w.raw(message)
        return w.bytes
    }

    static func decode(_ body: [UInt8]) -> RetryAnswer {
        var r = ByteReader(body)
        guard let ms = try? r.u32() else { return RetryAnswer(delay: .zero, message: body) }
        return RetryAnswer(delay: .milliseconds(Int64(ms)), message: Array(body[4...]))
    }
}

extension Duration {
    /// Whole milliseconds, rounded down; 0 for a negative duration.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return seconds &* 1000 &+ attoseconds / 1_000_000_000_000_000
    }
}

/// A job's own retry policy in a JOB header (docs/PROTOCOL.md, "Retries"): a tagged field after
/// the options (`u8` tag 0x01, `u8` length 13), holding `u8` max attempts (1–100), `u32` base
/// ms, `u32` cap ms, `u16` factor × 100 (100–1000), `u8` jitter percent (0–100), `u8` failures
/// (0 all, 1 retryable only).
enum WireRetry {
    static let tag: UInt8 = 0x01
    static let size = 13

    /// Reads the tagged fields after a JOB's options and returns the retry policy among them.
    /// Unknown tags are skipped, and a tail too short to be a tagged field is ignored (section
    /// 3: receivers ignore bytes they do not know); a retry field that is not 13 valid bytes is
    /// malformed.
    static func find(in r: inout ByteReader) throws(ProtocolViolation) -> RetryPolicy? {
        var found: RetryPolicy?
        while let tag = try? r.u8(), let length = try? r.u8() {
            if tag == Self.tag {
                guard Int(length) == size else { throw ProtocolViolation(.range, "a retry field of \(length) bytes") }
                found = try decode(&r)
            } else if (try? r.skip(Int(length))) == nil {
                break
            }
        }
        return found
    }

    static func encode(_ policy: RetryPolicy, into w: inout ByteWriter) {
        w.u8(UInt8(policy.maxAttempts))
        w.u32(UInt32(clamping: policy.base.wholeMilliseconds))
        w.u32(UInt32(clamping: policy.cap.wholeMilliseconds))
        w.u16(UInt16((policy.factor * 100).rounded()))
        w.u8(UInt8((policy.jitter * 100).rounded()))
        w.u8(policy.failures.rawValue)
    }

    static func decode(_ r: inout ByteReader) throws(ProtocolViolation) -> RetryPolicy {
        let attempts = try r.u8()
        let base = try r.u32()
        let cap = try r.u32()
        let factor = try r.u16()
        let jitter = try r.u8()
        let failuresByte = try r.u8()
        guard let failures = RetryPolicy.Failures(rawValue: failuresByte) else { throw ProtocolViolation(.range, "retry failures \(failuresByte)") }
        do {
            return try RetryPolicy(maxAttempts: Int(attempts), base: .milliseconds(Int64(base)), factor: Double(factor) / 100,
                                   cap: .milliseconds(Int64(cap)), jitter: Double(jitter) / 100, failures: failures)
        } catch {
            throw ProtocolViolation(.range, "retry policy: \(error)")
        }
    }
}
