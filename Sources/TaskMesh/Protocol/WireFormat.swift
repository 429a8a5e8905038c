/// Constants of the TaskMesh wire protocol, version 2 (docs/PROTOCOL.md).
enum Wire {
    /// The first two bytes of every message: "TM".
    static let signature: (UInt8, UInt8) = (0x54, 0x4D)
    /// The protocol version this build speaks.
    static let version: UInt8 = 2
    /// The bytes every message starts with: signature, version, command and the `u32` length of
    /// its header (these bytes included). The header's fields follow; the body follows the header.
    static let preambleSize = 8
    /// Longest id (client, job, worker) in bytes.
    static let maxIDLength = 255
    /// Longest handler name, in UTF-8 bytes.
    static let maxHandlerLength = 255
    /// Longest advertised endpoint, in UTF-8 bytes.
    static let maxEndpointLength = 255
    /// Most workers listed in one membership message.
    static let maxMembers = 4096
    /// Most entries a receiver accepts in one JOBS or RESULTS message.
    static let maxBatchEntries = 1024
    /// Senders put at most this many entries in one batch: enough to spread a message's cost
    /// over many jobs, few enough that one batch does not keep a worker busy while others idle.
    static let batchEntries = 256
    /// Senders keep a batch's body within this many bytes, well inside every receiver's frame
    /// limit (`limits.max_payload` plus 64 KiB).
    static let batchBytes = 60 * 1024
    /// Jobs and results with a larger payload travel alone (JOB, RESULT): batching them would
    /// cost a copy and save nothing.
    static let batchablePayload = 8 * 1024

    /// The command byte, the fourth byte of every message.
    enum Command: UInt8, Sendable, CaseIterable {
        case job = 0x01
        case result = 0x02
        case announce = 0x03
        case bye = 0x04
        case hello = 0x05
        case members = 0x06
        /// Reliable mode: a worker offers `concurrency` job slots to the broker.
        case ready = 0x07
        /// Reliable mode: liveness in every direction; the broker's carries its instance id.
        case heartbeat = 0x08
        /// Reliable mode: a worker leaves now; the broker requeues what it still holds.
        case disconnect = 0x09
        /// Several jobs of one client in one message.
        case jobs = 0x0A
        /// Several results for one client in one message.
        case results = 0x0B
        /// The submitter no longer wants a job: client → worker or broker, broker → worker.
        case cancel = 0x0C
        /// How far a running job has got: worker → sink or broker → client.
        case progress = 0x0D
    }
}

/// Why a received frame is not a valid TaskMesh message. Decoders throw it; every role counts it
/// and drops the message (or answers `badRequest` when it can tell who sent it).
struct ProtocolViolation: Error, Equatable, Sendable, CustomStringConvertible {
    enum Reason: String, Sendable {
        case frameCount = "more than one frame"
        case signature = "bad signature"
        case version = "unsupported version"
        case command = "unknown or unexpected command"
        case truncated = "truncated header"
        case emptyID = "empty id"
        case invalidUTF8 = "invalid UTF-8"
        case status = "unknown status"
        case trailing = "trailing bytes"
        case tooMany = "too many entries"
        case order = "names out of order or repeated"
        case range = "value out of range"
    }

    let reason: Reason
    let detail: String

    init(_ reason: Reason, _ detail: String = "") {
        self.reason = reason
        self.detail = detail
    }

    var description: String { detail.isEmpty ? reason.rawValue : "\(reason.rawValue): \(detail)" }
}
