import Foundation
import Synchronization
import Testing
@testable import TaskMesh

/// Collects the outcomes a promise reports to its callbacks, from any thread.
private final class OutcomeRecorder: Sendable {
    private let outcomes = Mutex<[Result<[UInt8], JobError>]>([])

    func record(_ outcome: Result<[UInt8], JobError>) { outcomes.withLock { $0.append(outcome) } }
    var all: [Result<[UInt8], JobError>] { outcomes.withLock { $0 } }
}

/// The one-shot promise every job ends through (Client/Promise.swift).
@Suite struct PromiseTests {
    @Test func theFirstCompletionWinsAndLaterOnesAreRefused() async throws {
        let promise = Promise()
        #expect(!promise.isComplete)
        let first = promise.complete(.success([1]))
        let second = promise.complete(.success([2]))
        let third = promise.complete(.failure(JobError(.cancelled)))
        #expect(first)
        #expect(!second)
        #expect(!third)
        #expect(promise.isComplete)
        #expect(try await promise.value() == [1])
    }

    @Test func aFailureCompletesItToo() async {
        let promise = Promise()
        #expect(promise.complete(.failure(JobError(.timedOut, "no outcome"))))
        #expect(!promise.complete(.success([1])))
        await #expect(throws: JobError(.timedOut, "no outcome")) { try await promise.value() }
    }

    @Test(.timeLimit(.minutes(1)))
    func valueAfterCompletionReturnsAtOnce() async throws {
        let promise = Promise()
        promise.complete(.success([7, 7]))
        #expect(try await promise.value() == [7, 7])
        #expect(try await promise.value() == [7, 7])  // as often as asked
    }

    @Test(.timeLimit(.minutes(1)))
    func valueBeforeCompletionResumesOnCompletion() async throws {
        let promise = Promise()
        async let waited = promise.value()
        // Whether the waiter registered yet or not, it gets the value exactly once.
        promise.complete(.success([4]))
        #expect(try await waited == [4])
    }

    @Test func onCompleteRegisteredBeforeCompletionFiresOnce() {
        let promise = Promise()
        let first = OutcomeRecorder()
        let second = OutcomeRecorder()
        promise.onComplete(first.record)
        promise.onComplete(second.record)
        #expect(first.all.isEmpty)

        promise.complete(.success([1]))
        promise.complete(.success([2]))
        #expect(first.all == [.success([1])])
        #expect(second.all == [.success([1])])
    }

    @Test func onCompleteRegisteredAfterCompletionFiresOnceAtOnce() {
        let promise = Promise()
        promise.complete(.failure(JobError(.cancelled)))
        let recorder = OutcomeRecorder()
        promise.onComplete(recorder.record)
        #expect(recorder.all == [.failure(JobError(.cancelled))])  // before onComplete returned
        promise.complete(.success([1]))
        #expect(recorder.all == [.failure(JobError(.cancelled))])
    }

    @Test(.timeLimit(.minutes(1)))
    func concurrentCompletionsHaveOneWinner() async throws {
        let promise = Promise()
        let recorder = OutcomeRecorder()
        promise.onComplete(recorder.record)
        let winners = await withTaskGroup(of: UInt8?.self) { group in
            for n in 0..<64 {
                group.addTask { promise.complete(.success([UInt8(n)])) ? UInt8(n) : nil }
            }
            var winners: [UInt8] = []
            for await winner in group {
                if let winner { winners.append(winner) }
            }
            return winners
        }
        #expect(winners.count == 1)
        let value = try await promise.value()
        #expect(value == winners)
        #expect(recorder.all == [.success(value)])
    }

    @Test(.timeLimit(.minutes(1)))
    func anOutcomeCompletedDuringTheSpinIsReturned() async throws {
        let promise = Promise()
        let completer = Thread { promise.complete(.success([9])) }
        completer.start()
        // A budget far longer than the thread needs to start: the outcome comes in the spin.
        #expect(await promise.outcome(spinningFor: .seconds(30)) == .success([9]))
    }

    @Test(.timeLimit(.minutes(1)))
    func anOutcomeAfterTheSpinIsAwaited() async throws {
        let promise = Promise()
        async let waited = promise.outcome(spinningFor: .microseconds(50))
        try await Task.sleep(for: .milliseconds(20))  // past the budget: the waiter suspended
        promise.complete(.failure(JobError(.timedOut)))
        #expect(await waited == .failure(JobError(.timedOut)))
    }
}
