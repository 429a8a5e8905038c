import Foundation
import Testing
@testable import TaskMesh

// The client's priority outbox and parking (Client/Outbox.swift, PendingJobs).

private func job(_ n: Int, priority: UInt8 = 5, handler: String = "echo", deadline: Instant = .current + .seconds(60)) -> Submission {
    Submission(jobID: [UInt8(n)], handler: handler, payload: [], deadline: deadline, wallDeadline: 0, promise: Promise(),
               options: DispatchOptions(priority: priority, requires: []))
}

private extension PendingJobs {
    mutating func sendAllIDs() -> [Int] {
        var sent: [Int] = []
        while let next = nextToSend(), sent.count <= count {
            markSent()
            sent.append(Int(next.jobID[0]))
        }
        return sent
    }
}

@Suite struct PriorityOutboxTests {
    @Test func higherPriorityLeavesFirstAndFIFOWithinOne() {
        var pending = PendingJobs()
        for (n, priority) in [(1, 5), (2, 1), (3, 9), (4, 5), (5, 9), (6, 1)] {
            _ = pending.add(job(n, priority: UInt8(priority)))
        }
        #expect(pending.sendAllIDs() == [3, 5, 1, 4, 2, 6])
    }

    @Test func aBatchTakesJobsOfTheFrontPriorityOnly() {
        var pending = PendingJobs()
        _ = pending.add(job(1, priority: 7))
        _ = pending.add(job(2, priority: 7))
        _ = pending.add(job(3, priority: 5))
        var taken: [Int] = []
        let span = pending.peekToSend { taken.append(Int($0.jobID[0])); return true }
        #expect(taken == [1, 2] && span == 2)
        pending.markSent(span: span)
        let next = pending.nextToSend()
        #expect(next?.jobID == [3])
    }

    @Test func aRequeuedJobGoesBackToTheFrontOfItsOwnPriority() {
        var pending = PendingJobs()
        _ = pending.add(job(1, priority: 3))
        _ = pending.add(job(2, priority: 3))
        _ = pending.add(job(3, priority: 8))
        #expect(pending.sendAllIDs() == [3, 1, 2])
        let requeued = pending.requeue([2]) && pending.requeue([3])
        #expect(requeued)
        _ = pending.add(job(4, priority: 3))
        #expect(pending.sendAllIDs() == [3, 2, 4])
    }

    @Test func parkedJobsStepAsideAndComeBackInOrder() {
        var pending = PendingJobs()
        for n in 1...4 { _ = pending.add(job(n, handler: n.isMultiple(of: 2) ? "gpu-only" : "echo")) }
        var sent: [Int] = []
        while let next = pending.nextToSend() {
            if next.handler == "gpu-only" {
                pending.parkNext()
            } else {
                pending.markSent()
                sent.append(Int(next.jobID[0]))
            }
        }
        #expect(sent == [1, 3] && pending.parkedCount == 2)
        let unparked = pending.unparkAll()
        #expect(unparked == 2)
        #expect(pending.sendAllIDs() == [2, 4])
    }

    @Test func parkedJobsStillExpireAndLeaveNothingBehind() {
        var pending = PendingJobs()
        let soon = Instant.current + .milliseconds(10)
        _ = pending.add(job(1, deadline: soon))
        _ = pending.nextToSend()
        pending.parkNext()
        let expired = pending.expire(at: soon + .seconds(1))
        #expect(expired.count == 1)
        pending.unparkAll()
        let next = pending.nextToSend()
        #expect(next == nil && pending.count == 0)
    }
}
