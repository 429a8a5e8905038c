import Foundation
import Synchronization
import Testing
@testable import TaskMesh

// The client's outcome bookkeeping (Client/PendingJobs.swift). Time is explicit: every call gets an
// instant built from one `Instant.current`, so nothing sleeps.

/// An 8-byte big-endian job id, as TaskMesh's own clients number their jobs.
private func jobID(_ n: Int) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: UInt64(n) >> (56 - 8 * UInt64($0))) }
}

/// A job numbered `n`; `tag` (carried in `wallDeadline`) tells apart two jobs with the same id.
private func submission(_ n: Int, deadline: Instant, tag: UInt64 = 0, handler: String = "echo") -> Submission {
    Submission(jobID: jobID(n), handler: handler, payload: [UInt8(truncatingIfNeeded: n)], deadline: deadline,
               wallDeadline: tag, promise: Promise())
}

private func ids(_ entries: [PendingJobs.Entry]) -> Set<[UInt8]> { Set(entries.map(\.submission.jobID)) }

@Suite struct PendingJobsTests {
    let t0 = Instant.current

    // MARK: Adding and sending

    @Test func addRefusesAnIDThatIsPending() {
        var pending = PendingJobs()
        let added = pending.add(submission(1, deadline: t0 + .seconds(5), handler: "first"))
        #expect(added)
        let duplicate = pending.add(submission(1, deadline: t0 + .seconds(9), handler: "second"))
        #expect(!duplicate)
        #expect(pending.count == 1)
        #expect(pending.entry(jobID(1))?.submission.handler == "first")
        #expect(pending.nextDeadline == t0 + .seconds(5))
        // Only one of them is queued to send.
        let firstSent = pending.nextToSend()
        #expect(firstSent?.handler == "first")
        pending.markSent()
        let afterFirst = pending.nextToSend()
        #expect(afterFirst == nil)

        // Once the job has ended, its id is free again.
        let finishedFirst = pending.finish(jobID(1))
        #expect(finishedFirst != nil)
        let reused = pending.add(submission(1, deadline: t0 + .seconds(9), handler: "second"))
        #expect(reused)
        let secondSent = pending.nextToSend()
        #expect(secondSent?.handler == "second")
    }

    @Test func jobsAreSentInTheOrderTheyWereAdded() {
        var pending = PendingJobs()
        for n in [3, 1, 2] {
            _ = pending.add(submission(n, deadline: t0 + .seconds(60)))
        }
        var sent: [[UInt8]] = []
        while let next = pending.nextToSend() {
            // Asking again without sending gives the same job.
            let askedAgain = pending.nextToSend()
            #expect(askedAgain?.jobID == next.jobID)
            #expect(pending.entry(next.jobID)?.sent == false)
            pending.markSent()
            #expect(pending.entry(next.jobID)?.sent == true)
            sent.append(next.jobID)
            if sent.count > 3 { break }
        }
        #expect(sent == [jobID(3), jobID(1), jobID(2)])
        #expect(pending.count == 3)  // sent is not ended
    }

    @Test func requeuePutsAJobBackAtTheFront() {
        var pending = PendingJobs()
        for n in 1...3 {
            _ = pending.add(submission(n, deadline: t0 + .seconds(60)))
        }
        pending.markSentNext(2)  // jobs 1 and 2 leave; 3 waits

        let requeued = pending.requeue(jobID(1))  // worker declined job 1
        #expect(requeued)
        #expect(pending.entry(jobID(1))?.sent == false)
        let resent = pending.nextToSend()
        #expect(resent?.jobID == jobID(1))  // ahead of job 3, which was waiting
        pending.markSent()
        #expect(pending.entry(jobID(1))?.sent == true)
        let waiting = pending.nextToSend()
        #expect(waiting?.jobID == jobID(3))
        pending.markSent()
        let nothingLeft = pending.nextToSend()
        #expect(nothingLeft == nil)

        // Two declines: each goes to the front in turn, and each job is sent once more.
        let first = pending.requeue(jobID(1))
        let second = pending.requeue(jobID(2))
        #expect(first && second)
        let resentOrder = pending.sendAll()
        #expect(resentOrder == [jobID(2), jobID(1)])
    }

    @Test func requeueRefusesJobsThatAreNotPending() {
        var pending = PendingJobs()
        _ = pending.add(submission(1, deadline: t0 + .seconds(60)))
        pending.markSentNext(1)
        _ = pending.finish(jobID(1))

        let ended = pending.requeue(jobID(1))
        let unknown = pending.requeue(jobID(99))
        #expect(!ended)
        #expect(!unknown)
        let nothingToSend = pending.nextToSend()
        #expect(nothingToSend == nil)
        #expect(pending.count == 0)
    }

    // MARK: Exactly one outcome

    @Test func finishReturnsTheEntryOnceThenNil() throws {
        var pending = PendingJobs()
        _ = pending.add(submission(1, deadline: t0 + .seconds(60)))
        _ = pending.add(submission(2, deadline: t0 + .seconds(60)))
        pending.markSentNext(1)

        let finished = pending.finish(jobID(1))
        let entry = try #require(finished)
        #expect(entry.submission.jobID == jobID(1))
        #expect(entry.sent)
        let finishedAgain = pending.finish(jobID(1))
        #expect(finishedAgain == nil)  // a duplicate or late result
        let finishedUnknown = pending.finish(jobID(99))
        #expect(finishedUnknown == nil)
        #expect(pending.count == 1)

        // Ending a job before it was sent (a cancellation) also keeps it from being sent.
        let cancelled = pending.finish(jobID(2))
        let unsent = try #require(cancelled)
        #expect(!unsent.sent)
        let nothingToSend = pending.nextToSend()
        #expect(nothingToSend == nil)
        #expect(pending.count == 0)
    }

    @Test func expireReturnsOnlyJobsPastTheirDeadlineEachOnce() {
        var pending = PendingJobs()
        _ = pending.add(submission(1, deadline: t0 + .seconds(1)))
        _ = pending.add(submission(2, deadline: t0 + .seconds(2)))
        _ = pending.add(submission(3, deadline: t0 + .seconds(3)))
        _ = pending.add(submission(4, deadline: t0 + .seconds(2)))
        _ = pending.finish(jobID(4))  // ended by its result before the deadline

        let early = pending.expire(at: t0 + .milliseconds(500))
        #expect(early.isEmpty)
        #expect(pending.count == 3)

        let due = pending.expire(at: t0 + .seconds(2))  // a deadline equal to now has passed
        #expect(ids(due) == [jobID(1), jobID(2)])
        #expect(due.count == 2)
        #expect(pending.count == 1)
        let lateResult = pending.finish(jobID(1))
        #expect(lateResult == nil)  // a result after the timeout is late

        let again = pending.expire(at: t0 + .seconds(2))
        #expect(again.isEmpty)

        let last = pending.expire(at: t0 + .seconds(30))
        #expect(ids(last) == [jobID(3)])
        #expect(pending.count == 0)
        let none = pending.expire(at: t0 + .seconds(3600))
        #expect(none.isEmpty)
    }

    @Test func anExpiredUnsentJobIsNotSentAfterwards() {
        var pending = PendingJobs()
        _ = pending.add(submission(1, deadline: t0 + .seconds(1)))
        _ = pending.add(submission(2, deadline: t0 + .seconds(5)))
        let expired = pending.expire(at: t0 + .seconds(1))
        #expect(ids(expired) == [jobID(1)])
        #expect(expired.first?.sent == false)
        let sentAfter = pending.sendAll()
        #expect(sentAfter == [jobID(2)])
    }

    @Test func aFinishedJobsStaleExpiryNeverResurfaces() {
        var pending = PendingJobs()
        // The id is reused with a later deadline: the first job's expiry must not end the second.
        _ = pending.add(submission(1, deadline: t0 + .seconds(1), tag: 1))
        _ = pending.finish(jobID(1))
        _ = pending.add(submission(1, deadline: t0 + .seconds(5), tag: 2))
        let atOldDeadline = pending.expire(at: t0 + .seconds(2))
        #expect(atOldDeadline.isEmpty)
        #expect(pending.entry(jobID(1))?.submission.wallDeadline == 2)
        let atNewDeadline = pending.expire(at: t0 + .seconds(5))
        #expect(atNewDeadline.map(\.submission.wallDeadline) == [2])

        // Reused with an earlier deadline: one expiry at that deadline, none at the stale one.
        _ = pending.add(submission(2, deadline: t0 + .seconds(20), tag: 3))
        _ = pending.finish(jobID(2))
        _ = pending.add(submission(2, deadline: t0 + .seconds(10), tag: 4))
        _ = pending.add(submission(9, deadline: t0 + .seconds(100), tag: 9))  // keeps the table non-empty
        let atEarlierDeadline = pending.expire(at: t0 + .seconds(10))
        #expect(atEarlierDeadline.map(\.submission.wallDeadline) == [4])
        let atStaleDeadline = pending.expire(at: t0 + .seconds(20))
        #expect(atStaleDeadline.isEmpty)

        // Reused with the same deadline: two expiries for the id are queued, one outcome results.
        _ = pending.add(submission(3, deadline: t0 + .seconds(30), tag: 5))
        _ = pending.finish(jobID(3))
        _ = pending.add(submission(3, deadline: t0 + .seconds(30), tag: 6))
        let atSharedDeadline = pending.expire(at: t0 + .seconds(30))
        #expect(atSharedDeadline.map(\.submission.wallDeadline) == [6])
        let afterSharedDeadline = pending.expire(at: t0 + .seconds(31))
        #expect(afterSharedDeadline.isEmpty)
        #expect(pending.count == 1)  // job 9
    }

    // MARK: Deadlines and closing

    @Test func nextDeadlineIsTheEarliestDeadline() {
        var pending = PendingJobs()
        #expect(pending.nextDeadline == nil)
        _ = pending.add(submission(3, deadline: t0 + .seconds(3)))
        _ = pending.add(submission(1, deadline: t0 + .seconds(1)))
        _ = pending.add(submission(2, deadline: t0 + .seconds(2)))
        #expect(pending.nextDeadline == t0 + .seconds(1))
        _ = pending.expire(at: t0 + .seconds(1))
        #expect(pending.nextDeadline == t0 + .seconds(2))
        _ = pending.expire(at: t0 + .seconds(3))
        #expect(pending.nextDeadline == nil)
    }

    /// The loop sleeps until `nextDeadline`: whatever else it reports, it must never be later
    /// than a pending job's deadline, or that job's timeout would come late.
    @Test func nextDeadlineIsNeverLaterThanAPendingDeadline() throws {
        var pending = PendingJobs()
        _ = pending.add(submission(1, deadline: t0 + .seconds(1)))
        _ = pending.add(submission(2, deadline: t0 + .seconds(10)))
        _ = pending.finish(jobID(1))
        let next = try #require(pending.nextDeadline)
        #expect(next <= t0 + .seconds(10))
    }

    /// A finished job's deadline may still be reported (one wake-up that expires nothing), but
    /// not after `expire` passed it, and nothing once no job is pending.
    @Test func nextDeadlineForgetsFinishedJobsOnceExpirePassesThem() {
        var pending = PendingJobs()
        _ = pending.add(submission(1, deadline: t0 + .seconds(1)))
        _ = pending.add(submission(2, deadline: t0 + .seconds(10)))
        _ = pending.finish(jobID(1))
        #expect(pending.expire(at: t0 + .seconds(1)).isEmpty, "a finished job does not expire")
        #expect(pending.nextDeadline == t0 + .seconds(10))
        _ = pending.finish(jobID(2))
        #expect(pending.nextDeadline == nil)
    }

    @Test func removeAllEndsEveryJobOnce() {
        var pending = PendingJobs()
        for n in 1...3 {
            _ = pending.add(submission(n, deadline: t0 + .seconds(n)))
        }
        pending.markSentNext(1)
        let all = pending.removeAll()
        #expect(ids(all) == [jobID(1), jobID(2), jobID(3)])
        #expect(all.count == 3)
        #expect(all.filter(\.sent).map(\.submission.jobID) == [jobID(1)])

        #expect(pending.count == 0)
        let nothingToSend = pending.nextToSend()
        #expect(nothingToSend == nil)
        #expect(pending.nextDeadline == nil)
        let expiredAfterClose = pending.expire(at: t0 + .seconds(60))
        #expect(expiredAfterClose.isEmpty)
        let finishedAfterClose = pending.finish(jobID(2))
        #expect(finishedAfterClose == nil)
        let removedAgain = pending.removeAll()
        #expect(removedAgain.isEmpty)
        let added = pending.add(submission(1, deadline: t0 + .seconds(5)))
        #expect(added)
    }

    // MARK: Memory

    /// A long-running client adds and finishes jobs with far deadlines, one after another. Each
    /// finished job leaves its expiry in the heap; the heap must stay bounded by the pending jobs,
    /// not by the throughput. `expiries` is private, so the bound is observed through
    /// `nextDeadline`: deadlines grow with the job number, so the stale expiry at the top of the
    /// heap tells the oldest job still in it, and so how many expiries the heap holds.
    @Test(arguments: [false, true])
    func expiryHeapFollowsPendingJobsNotThroughput(withLongLivedJob: Bool) async {
        var pending = PendingJobs()
        let base = t0 + .seconds(3600)
        let longLived = t0 + .seconds(86_400 * 365)
        if withLongLivedJob {
            // In flight at a slow worker for the whole run.
            _ = pending.add(submission(1 << 40, deadline: longLived))
            pending.markSentNext(1)
        }
        let jobs = 100_000
        var largestHeap = 0
        var failures = 0
        for n in 0..<jobs {
            await yieldingNowAndThen(n)
            guard pending.add(submission(n, deadline: base + .milliseconds(n))),
                  pending.nextToSend()?.jobID == jobID(n) else {
                failures += 1
                continue
            }
            pending.markSent()
            if pending.finish(jobID(n)) == nil { failures += 1 }
            if let next = pending.nextDeadline, next < longLived {
                let oldest = Int(((next - base) / .milliseconds(1)).rounded())
                largestHeap = max(largestHeap, n - oldest + 1)
            }
        }
        #expect(failures == 0)
        #expect(pending.count == (withLongLivedJob ? 1 : 0))
        #expect(pending.outbox.count == 0)
        // Without compaction this would be 100,000.
        #expect(largestHeap <= 2 * 4096, "the expiry heap held up to \(largestHeap) entries for at most 1 pending job")
    }

    /// Job ids that ended while waiting to be sent (cancelled or expired, typically while no worker
    /// is known) must not pile up in the outbox behind one job that waits long: the outbox follows
    /// the number of pending jobs, not the throughput.
    @Test func outboxDoesNotKeepEndedJobsBehindAWaitingOne() async {
        var pending = PendingJobs()
        _ = pending.add(submission(0, deadline: t0 + .seconds(3600)))  // waits: no worker yet
        for n in 1...20_000 {
            await yieldingNowAndThen(n)
            _ = pending.add(submission(n, deadline: t0 + .seconds(1)))
            if n.isMultiple(of: 2) { _ = pending.finish(jobID(n)) }  // cancelled
            _ = pending.nextToSend()  // the client loop asks on every turn
        }
        let timedOut = pending.expire(at: t0 + .seconds(2))  // the others time out
        #expect(timedOut.count == 10_000)
        #expect(pending.count == 1)
        #expect(pending.outbox.count <= 2 * 4096)
        // Whatever it keeps, only the pending job is ever sent.
        let sentAfter = pending.sendAll()
        #expect(sentAfter == [jobID(0)])
    }

    // MARK: Random operations against a model

    /// Seeded random adds, sends, declines, results, cancellations, timeouts and closes, with ids
    /// drawn from a small set so they collide and get reused. Checked against a plain dictionary:
    /// every job that was accepted ends exactly once, and the queue and deadlines stay consistent.
    @Test func randomOperationsGiveEveryJobExactlyOneOutcome() async {
        struct Model {
            var deadline: Instant
            var sent: Bool
            var tag: UInt64
        }
        var rng = SplitMix64(seed: 0x5045_4E44_494E_4731)
        var pending = PendingJobs()
        var model: [[UInt8]: Model] = [:]
        var outcomes: [UInt64: Int] = [:]  // tag -> number of outcomes
        var nextTag: UInt64 = 1
        var now = t0
        var problems: [String] = []
        func problem(_ text: String) { if problems.count < 10 { problems.append(text) } }
        func ended(_ entries: [PendingJobs.Entry], _ how: String, step: Int) {
            for entry in entries {
                let tag = entry.submission.wallDeadline
                outcomes[tag, default: 0] += 1
                if model[entry.submission.jobID]?.tag != tag { problem("step \(step): \(how) ended job tag \(tag), not pending") }
                model[entry.submission.jobID] = nil
            }
        }

        for step in 0..<20_000 {
            await yieldingNowAndThen(step)
            let n = rng.below(40)
            let id = jobID(n)
            switch rng.below(100) {
            case 0..<35:  // submit
                let deadline = now + .milliseconds(rng.below(300))
                let added = pending.add(submission(n, deadline: deadline, tag: nextTag))
                if added != (model[id] == nil) { problem("step \(step): add returned \(added)") }
                if added {
                    model[id] = Model(deadline: deadline, sent: false, tag: nextTag)
                    outcomes[nextTag] = 0
                    nextTag += 1
                }
            case 45..<55:  // send a batch of up to k
                let k = 1 + rng.below(6)
                var taken: [Submission] = []
                let span = pending.peekToSend { next in
                    guard taken.count < k else { return false }
                    taken.append(next)
                    return true
                }
                let waiting = model.values.filter { !$0.sent }.count
                if taken.count != min(k, waiting) { problem("step \(step): peekToSend offered \(taken.count) of \(waiting) waiting (k \(k))") }
                if Set(taken.map(\.jobID)).count != taken.count { problem("step \(step): peekToSend offered a job twice") }
                for next in taken {
                    guard let known = model[next.jobID], !known.sent, known.tag == next.wallDeadline else {
                        problem("step \(step): peekToSend offered a job that is not waiting")
                        continue
                    }
                }
                pending.markSent(span: span)
                for next in taken {
                    model[next.jobID]?.sent = true
                    if pending.entry(next.jobID)?.sent != true { problem("step \(step): markSent(span:) left a taken job unsent") }
                }
            case 35..<45:  // send one
                if let next = pending.nextToSend() {
                    guard let known = model[next.jobID], !known.sent, known.tag == next.wallDeadline else {
                        problem("step \(step): nextToSend returned a job that is not waiting")
                        break
                    }
                    pending.markSent()
                    model[next.jobID]?.sent = true
                } else if model.values.contains(where: { !$0.sent }) {
                    problem("step \(step): a job waits but nextToSend returned nil")
                }
            case 55..<60:  // declined
                let requeued = pending.requeue(id)
                if requeued != (model[id]?.sent == true) { problem("step \(step): requeue returned \(requeued)") }
                if requeued { model[id]?.sent = false }
            case 60..<80:  // result or cancellation
                let entry = pending.finish(id)
                if (entry != nil) != (model[id] != nil) { problem("step \(step): finish returned \(entry == nil ? "nil" : "an entry")") }
                if let entry {
                    if entry.sent != model[id]?.sent { problem("step \(step): finish returned a wrong sent flag") }
                    ended([entry], "finish", step: step)
                }
            case 80..<99:  // time passes
                now += .milliseconds(rng.below(120))
                let expired = pending.expire(at: now)
                let due = Set(model.filter { $0.value.deadline <= now }.map(\.value.tag))
                if Set(expired.map(\.submission.wallDeadline)) != due || expired.count != due.count {
                    problem("step \(step): expire returned \(expired.count) jobs, \(due.count) were due")
                }
                ended(expired, "expire", step: step)
            default:  // the client closes and starts over
                ended(pending.removeAll(), "removeAll", step: step)
                if !model.isEmpty { problem("step \(step): removeAll left \(model.count) jobs") }
                model.removeAll()
            }

            if pending.count != model.count { problem("step \(step): count \(pending.count), model \(model.count)") }
            if let earliest = model.values.map(\.deadline).min() {
                if let next = pending.nextDeadline {
                    if next > earliest { problem("step \(step): nextDeadline is later than a pending deadline") }
                } else {
                    problem("step \(step): nextDeadline is nil with jobs pending")
                }
            }
            if problems.count >= 10 { break }
        }
        ended(pending.removeAll(), "removeAll", step: -1)

        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(outcomes.count > 2_000)  // the walk did accept many jobs
        let wrong = outcomes.filter { $0.value != 1 }
        #expect(wrong.isEmpty, "jobs with other than one outcome: \(wrong.prefix(10))")
    }
}

private extension PendingJobs {
    /// Sends the next `count` jobs.
    mutating func markSentNext(_ count: Int) {
        for _ in 0..<count where nextToSend() != nil {
            markSent()
        }
    }

    /// Sends everything waiting and returns the ids in the order they left.
    mutating func sendAll() -> [[UInt8]] {
        var sent: [[UInt8]] = []
        while let next = nextToSend(), sent.count <= count {
            markSent()
            sent.append(next.jobID)
        }
        return sent
    }
}
