/// A job on its way from the API to the client's loop.
struct Submission: Sendable {
    let jobID: [UInt8]
    let handler: String
    let payload: [UInt8]
    /// When the client gives up, by the monotonic clock.
    let deadline: Instant
    /// The same moment by the wall clock, in milliseconds since the Unix epoch. Not sent: the
    /// wire carries the time remaining until `deadline` (`WireDeadline.relative`).
    let wallDeadline: UInt64
    let promise: Promise
    /// Priority and required labels.
    var options: DispatchOptions = .standard
    /// Its own retry policy, sent with it (then always as a JOB of its own).
    var retry: RetryOverride? = nil
    /// Direct mode: the attempt it is sent as (a retry sends the next), and the worker link
    /// the last attempt failed on, which the retry avoids when another can run it.
    var attempt: UInt16 = 1
    var avoidWorker: UInt32 = 0
}

/// What the API hands to the loop; drained whole on every wake-up.
struct ClientInbox: Sendable {
    var submissions: [Submission] = []
    var cancellations: [[UInt8]] = []
    var isEmpty: Bool { submissions.isEmpty && cancellations.isEmpty }
}
