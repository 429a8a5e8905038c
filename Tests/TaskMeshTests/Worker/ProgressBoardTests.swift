import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// Progress: coalesced to the latest, the last kept for the result, its detail bounded.
struct ProgressBoardTests {
    @Test func progressIsCoalescedToTheLatestAndTheLastIsKeptForTheResult() throws {
        let board = ProgressBoard(wake: {})
        let start = Instant.current
        func update(_ n: UInt64) -> ProgressMessage {
            ProgressMessage(attempt: 1, clientID: [1], jobID: [2], completed: n, total: 100, detail: [])
        }
        for n in UInt64(1)...50 { board.report(update(n)) }
        #expect(board.due(at: start).updates.map(\.completed) == [50], "only the latest leaves")
        for n in UInt64(51)...60 { board.report(update(n)) }
        let early = board.due(at: start + .milliseconds(100))
        #expect(early.updates.isEmpty, "not again within the interval")
        #expect(early.next == start + ProgressBoard.interval)
        #expect(board.due(at: start + ProgressBoard.interval).updates.map(\.completed) == [60])
        board.report(update(61))
        let last = board.finish(clientID: [1], jobID: [2], attempt: 1, at: start + .milliseconds(300))
        #expect(last?.completed == 61, "the update not yet sent goes before the result")
        board.report(update(62))
        #expect(board.due(at: start + .seconds(1)).updates.isEmpty, "reports after the handler returned are dropped")
        _ = board.due(at: start + .seconds(20))
        #expect(board.isEmpty, "finished jobs are forgotten")
    }

    @Test func progressDetailOverTheLimitIsMalformed() {
        let frames = ProgressMessage(attempt: 1, clientID: [1], jobID: [2], completed: 1, total: 2,
                                     detail: Array(repeating: 0, count: ProgressMessage.maxDetail + 1)).encode()
        #expect(throws: ProtocolViolation(.range, "a detail of 4097 bytes")) { try ProgressMessage.decode(frames) }
    }

}
