/// A job's own retry policy as it travels with the job: a reference, so that the jobs without
/// one (nearly all) carry a nil pointer and copy no struct for it.
final class RetryOverride: Sendable, Equatable {
    let policy: RetryPolicy
    init(_ policy: RetryPolicy) { self.policy = policy }
    static func == (a: RetryOverride, b: RetryOverride) -> Bool { a.policy == b.policy }
}

/// A job's id: opaque bytes, 1 to 255 of them. Clients make one per job unless told otherwise;
/// ids are namespaced by client, so two clients using the same id never meet.
public struct JobID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// An id from text, as its UTF-8 bytes.
    public init(_ text: String) { self.bytes = Array(text.utf8) }

    /// The id as text when it is printable UTF-8, else as hex.
    public var description: String {
        if let text = String(validating: bytes, as: UTF8.self), text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) {
            return text
        }
        return bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// Per-job settings for `Client.enqueue`.
public struct JobOptions: Sendable {
    /// How long the client waits for an outcome; nil: the topology's `client.deadline`.
    public var deadline: Duration?
    /// The job's id; nil: the client makes a unique one. A second job with the id of a pending
    /// one fails with `duplicateJobID`.
    public var id: JobID?
    /// Labels a worker must carry (`worker.labels`) to be given this job, e.g. `gpu`. With none
    /// alive, the job ends `noWorkers` naming the missing labels (reliable mode: after
    /// `broker.unroutable_timeout`). At most 32 labels of 1 to 255 UTF-8 bytes.
    public var requires: Set<String>
    /// Which jobs go first when several wait: higher first, first come first served within
    /// one priority (docs/TOPOLOGY.md, "Routing and priorities").
    public var priority: JobPriority
    /// When the job runs again after a failure; nil: its handler's policy (set at `register`).
    /// Direct mode: the client sends the retry, preferring another worker; reliable mode: the
    /// broker holds the job until its retry time. The outcome's `JobError.attempts` says how
    /// many attempts ran.
    public var retry: RetryPolicy?

    public init(deadline: Duration? = nil, id: JobID? = nil, requires: Set<String> = [], priority: JobPriority = .default,
                retry: RetryPolicy? = nil) {
        self.deadline = deadline
        self.id = id
        self.requires = requires
        self.priority = priority
        self.retry = retry
    }
}

/// A job's priority: 1 (lowest) to 9 (highest), 5 by default. Jobs of higher priority leave a
/// client first (direct mode) and are dispatched first by the broker (reliable mode); a job
/// that has waited long is aged upwards so low priorities never starve (docs/TOPOLOGY.md).
public struct JobPriority: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// 1 to 9.
    public let value: UInt8

    public static let lowest = JobPriority(unchecked: 1)
    public static let low = JobPriority(unchecked: 3)
    public static let `default` = JobPriority(unchecked: 5)
    public static let high = JobPriority(unchecked: 7)
    public static let highest = JobPriority(unchecked: 9)
    /// Every valid value, lowest first.
    public static let range: ClosedRange<Int> = 1...9

    /// Nil for a value outside 1...9.
    public init?(_ value: Int) {
        guard Self.range.contains(value) else { return nil }
        self.value = UInt8(value)
    }

    private init(unchecked value: UInt8) { self.value = value }

    public static func < (a: JobPriority, b: JobPriority) -> Bool { a.value < b.value }
    public var description: String { "\(value)" }
}
