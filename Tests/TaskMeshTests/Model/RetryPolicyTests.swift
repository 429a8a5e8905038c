import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// Retry policies: their bounds, backoff, which failures retry, their wire form.
struct RetryPolicyTests {
    @Test func retryPoliciesRefuseValuesOutOfRange() {
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 0) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 101) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 3, factor: 0.5) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 3, jitter: 1.5) }
        #expect(throws: RetryPolicyError.self) { try RetryPolicy(maxAttempts: 3, base: .seconds(2), cap: .seconds(1)) }
    }

    @Test func backoffGrowsByItsFactorUpToItsCapLessItsJitter() throws {
        let policy = try RetryPolicy(maxAttempts: 10, base: .milliseconds(100), factor: 3, cap: .seconds(2), jitter: 0.25)
        #expect(policy.nominalDelay(after: 1) == .milliseconds(100))
        #expect(policy.nominalDelay(after: 2) == .milliseconds(300))
        #expect(policy.nominalDelay(after: 3) == .milliseconds(900))
        #expect(policy.nominalDelay(after: 4) == .seconds(2), "capped")
        #expect(policy.delay(after: 2, random: 0) == .milliseconds(300))
        #expect(policy.delay(after: 2, random: 1) == .milliseconds(225), "at most a quarter taken off")
    }

    @Test func whichFailuresRetry() throws {
        struct Plain: Error {}
        let all = try RetryPolicy(maxAttempts: 3, base: .milliseconds(10), jitter: 0)
        #expect(all.retry(after: 1, error: Plain()) == .milliseconds(10))
        #expect(all.retry(after: 3, error: Plain()) == nil, "no attempt left")
        #expect(all.retry(after: 1, error: HandlerFailure.final("no")) == nil)
        #expect(all.retry(after: 1, error: HandlerFailure.retryable("later", after: .seconds(7))) == .seconds(7))
        #expect(all.retry(after: 1, error: CancellationError()) == nil)
        let marked = try RetryPolicy(maxAttempts: 3, failures: .retryableOnly)
        #expect(marked.retry(after: 1, error: Plain()) == nil)
        #expect(marked.retry(after: 1, error: HandlerFailure.retryable("later")) != nil)
    }

    @Test func aJobsRetryPolicyRoundTripsAndBadOnesAreMalformed() throws {
        let policy = try RetryPolicy(maxAttempts: 7, base: .milliseconds(250), factor: 1.5, cap: .seconds(9), jitter: 0.2, failures: .retryableOnly)
        let job = JobMessage(clientID: [1], jobID: [2], handler: "h", deadline: 0, attempt: 1, payload: [], retry: RetryOverride(policy))
        let decoded = try JobMessage.decode(job.encode())
        #expect(decoded.retry?.policy == policy)
        // Max attempts 0 in the field.
        var message = job.encode()
        let at = wireParts(message)[0].count - WireRetry.size
        message[at] = 0
        #expect(throws: ProtocolViolation.self) { try JobMessage.decode(message) }
        // An unknown tagged field after the options is skipped.
        var tagged = JobMessage(clientID: [1], jobID: [2], handler: "h", deadline: 0, attempt: 1, payload: [],
                                options: DispatchOptions(priority: 6, requires: [])).encode()
        tagged = restated(tagged + [0x7E, 0x02, 0xAA, 0xBB])
        #expect(try JobMessage.decode(tagged).retry == nil)
        // A job with a policy never rides in a JOBS.
        let plain = JobMessage(clientID: [1], jobID: [3], handler: "h", deadline: 0, attempt: 1, payload: [])
        let first = try #require(JobBatchWriter.firstMessage(of: [job, plain]))
        #expect(first.count == 1 && first.frame == job.encode())
    }

}
