/// When a failed job runs again: how many attempts in all, how long to wait between them
/// (exponential backoff with jitter), and which failures count. Set per handler when it is
/// registered (the default for its jobs) and per job (`JobOptions.retry`, which overrides it).
///
/// The wait before attempt `n + 1` is `min(cap, base × factor^(n − 1))`, less a random part of
/// up to `jitter` of it (so retries of many jobs spread out); a handler that throws
/// `HandlerFailure.retryable(_:after:)` with a delay waits that long instead. A job that is
/// cancelled, rejected by its validate step, or fails with `HandlerFailure.final` never retries.
public struct RetryPolicy: Hashable, Sendable {
    /// Which handler errors retry.
    public enum Failures: UInt8, Hashable, Sendable {
        /// Every thrown error except `HandlerFailure.final`.
        case all = 0
        /// Only `HandlerFailure.retryable`.
        case retryableOnly = 1
    }

    /// Attempts in all, the first included: 1 (no retry) to 100.
    public var maxAttempts: Int
    /// The wait before the second attempt.
    public var base: Duration
    /// How much longer each further wait is: 1 to 10.
    public var factor: Double
    /// The longest wait.
    public var cap: Duration
    /// The share of each wait that is random: 0 (none) to 1.
    public var jitter: Double
    public var failures: Failures

    /// No retry: one attempt.
    public static let none = RetryPolicy(unchecked: 1)

    /// Fails with a message when a value is out of range: `maxAttempts` 1 to 100, `factor` 1 to
    /// 10, `jitter` 0 to 1, `base` and `cap` 0 to 24 hours with `cap` no less than `base`.
    public init(maxAttempts: Int, base: Duration = .milliseconds(100), factor: Double = 2, cap: Duration = .seconds(30),
                jitter: Double = 0.5, failures: Failures = .all) throws(RetryPolicyError) {
        guard (1...100).contains(maxAttempts) else { throw RetryPolicyError("max attempts must be 1 to 100, not \(maxAttempts)") }
        guard factor >= 1 && factor <= 10 else { throw RetryPolicyError("the backoff factor must be 1 to 10, not \(factor)") }
        guard jitter >= 0 && jitter <= 1 else { throw RetryPolicyError("the jitter must be 0 to 1, not \(jitter)") }
        let day = Duration.seconds(86_400)
        guard base >= .zero && base <= day && cap >= base && cap <= day else {
            throw RetryPolicyError("the backoff base and cap must be 0 to 24 h, the cap no less than the base (got \(base) and \(cap))")
        }
        self.init(unchecked: maxAttempts, base: base, factor: factor, cap: cap, jitter: jitter, failures: failures)
    }

    private init(unchecked maxAttempts: Int, base: Duration = .milliseconds(100), factor: Double = 2, cap: Duration = .seconds(30),
                 jitter: Double = 0.5, failures: Failures = .all) {
        self.maxAttempts = maxAttempts
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self.failures = failures
    }

    /// The longest wait before the attempt after `attempt` (before jitter).
    public func nominalDelay(after attempt: Int) -> Duration {
        let grown = base * pow(factor, Double(max(0, attempt - 1)))
        return grown > cap ? cap : grown
    }

    /// The wait before the attempt after `attempt`, jittered by `random` (0 to 1).
    func delay(after attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        nominalDelay(after: attempt) * (1 - jitter * random)
    }

    /// Whether a job whose attempt `attempt` threw `error` runs again, and after how long.
    func retry(after attempt: Int, error: any Error) -> Duration? {
        guard attempt < maxAttempts, !(error is CancellationError) else { return nil }
        if let failure = error as? HandlerFailure {
            guard failure.retryable else { return nil }
            return failure.after ?? delay(after: attempt)
        }
        return failures == .all ? delay(after: attempt) : nil
    }
}

/// Why a `RetryPolicy` could not be made.
public struct RetryPolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An error a handler throws to say whether its job may run again (`RetryPolicy`).
public struct HandlerFailure: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// Whether the job may run again (within its policy's attempts).
    public let retryable: Bool
    /// How long to wait before the next attempt, overriding the policy's backoff.
    public let after: Duration?

    /// A failure worth another attempt, after `after` (default: the policy's backoff).
    public static func retryable(_ message: String, after: Duration? = nil) -> HandlerFailure {
        HandlerFailure(message: message, retryable: true, after: after)
    }

    /// A failure no further attempt would fix: the job ends now whatever its policy.
    public static func final(_ message: String) -> HandlerFailure {
        HandlerFailure(message: message, retryable: false, after: nil)
    }

    public var description: String { message }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
