import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// Cancels that arrive while a runner is taking a job, and those that cross the job's answer.
struct CancelOnArrivalTests {
    @Test func aRunnerFindsTheCancelOnceAndStaleOnesAreForgotten() {
        let running = RunningJobs(runners: 1)
        let now = Instant.current
        running.cancelOnArrival(clientID: [1], jobID: [2], at: now)
        #expect(running.takeCancelOnArrival(clientID: [1], jobID: [2]))
        #expect(!running.takeCancelOnArrival(clientID: [1], jobID: [2]), "taken once")
        // A CANCEL that crossed the job's answer: the job's end forgets it...
        running.cancelOnArrival(clientID: [1], jobID: [3], at: now)
        running.jobEnded(clientID: [1], jobID: [3])
        #expect(!running.takeCancelOnArrival(clientID: [1], jobID: [3]))
        // ...and one whose job had already ended goes after `earlyRetention`.
        running.cancelOnArrival(clientID: [1], jobID: [4], at: now)
        running.forgetEarly(before: now + RunningJobs.earlyRetention + .milliseconds(1))
        #expect(!running.takeCancelOnArrival(clientID: [1], jobID: [4]))
    }
}
