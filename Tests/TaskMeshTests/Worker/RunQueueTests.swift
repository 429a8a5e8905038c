import Testing
@testable import TaskMesh

struct RunQueueTests {
    @Test func itemsGoOutInOrderAndEachOnce() async {
        let queue = RunQueue<Int>()
        queue.push(0..<100)
        var taken: [Int] = []
        for _ in 0..<100 { if let item = await queue.next() { taken.append(item) } }
        #expect(taken == Array(0..<100))
        #expect(queue.takeNewest(leaving: 0).isEmpty)
    }

    @Test func suspendedRunnersGetPushedItemsEachOnceAndEndOnClose() async throws {
        let queue = RunQueue<Int>()
        let taken = Shared(0)
        let runners = (0..<4).map { _ in
            Task { () -> [Int] in
                var got: [Int] = []
                while let item = await queue.next() {
                    got.append(item)
                    taken.update { $0 += 1 }
                }
                return got
            }
        }
        for batch in stride(from: 0, to: 1000, by: 10) { queue.push(batch..<batch + 10) }
        try await eventually("the runners took every item") { taken.value == 1000 }
        queue.close()
        var all: [Int] = []
        for runner in runners { all += await runner.value }
        #expect(all.sorted() == Array(0..<1000), "every item went to exactly one runner")
    }

    @Test func pollTakesWhatIsQueuedWithoutWaiting() async {
        let queue = RunQueue<Int>()
        #expect(queue.poll() == nil, "nothing queued")
        queue.push([1, 2, 3])
        #expect(queue.poll() == 1)
        #expect(await queue.next() == 2)
        #expect(queue.poll() == 3)
        #expect(queue.poll() == nil)
        queue.push([4])
        queue.close()
        #expect(queue.poll() == nil, "a closed queue hands out nothing")
    }

    /// Runners that go on with `poll()` after each item, as the worker's do, still take every
    /// item exactly once, and a runner suspended in `next()` is woken for what they leave.
    @Test func runnersPollingBetweenItemsTakeEachItemOnce() async throws {
        let queue = RunQueue<Int>()
        let taken = Shared(0)
        let runners = (0..<3).map { _ in
            Task { () -> [Int] in
                var got: [Int] = []
                while var item = await queue.next() {
                    while true {
                        got.append(item)
                        taken.update { $0 += 1 }
                        guard let next = queue.poll() else { break }
                        item = next
                    }
                }
                return got
            }
        }
        for batch in stride(from: 0, to: 3000, by: 7) { queue.push(batch..<min(batch + 7, 3000)) }
        try await eventually("the runners took every item") { taken.value == 3000 }
        queue.close()
        var all: [Int] = []
        for runner in runners { all += await runner.value }
        #expect(all.sorted() == Array(0..<3000), "every item went to exactly one runner")
    }

    @Test func takeNewestLeavesTheOldestWaiting() async {
        let queue = RunQueue<Int>()
        queue.push([1, 2, 3, 4, 5])
        #expect(await queue.next() == 1)
        #expect(queue.takeNewest(leaving: 5).isEmpty, "fewer wait than it may leave")
        #expect(queue.takeNewest(leaving: 1) == [3, 4, 5], "oldest first")
        #expect(queue.count == 1)
        #expect(await queue.next() == 2)
        queue.close()
    }

    @Test func takeNewestLeavingNoneReturnsWhatNoRunnerStarted() async {
        let queue = RunQueue<Int>()
        queue.push([1, 2, 3])
        #expect(await queue.next() == 1)
        #expect(queue.takeNewest(leaving: 0) == [2, 3])
        queue.close()
        #expect(await queue.next() == nil)
        queue.push([4])
        #expect(await queue.next() == nil, "a closed queue takes nothing")
    }

    /// A borrowed runner takes nothing until it is given back, then takes what was queued.
    @Test func aBorrowedRunnerSitsOutUntilGivenBack() async throws {
        let queue = RunQueue<Int>()
        #expect(queue.borrowIdleRunner() == nil, "no runner is waiting yet")
        let taken = Shared<[Int]>([])
        let runner = Task {
            while let item = await queue.next() { taken.update { $0.append(item) } }
        }
        var borrowed: RunQueue<Int>.Borrowed?
        try await eventually("the runner is waiting") {
            borrowed = queue.borrowIdleRunner()
            return borrowed != nil
        }
        #expect(queue.borrowIdleRunner() == nil, "the only runner is already borrowed")
        queue.push([1, 2])
        #expect(queue.takeNewest(leaving: 0) == [1, 2], "nothing was taken while the runner was out")
        queue.push([3])
        queue.giveBack(try #require(borrowed))
        try await eventually("the runner took the queued item once back") { taken.value == [3] }
        queue.close()
        await runner.value
    }
}
