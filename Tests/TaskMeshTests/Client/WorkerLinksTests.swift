import Testing
import ZMQ
@testable import TaskMesh

/// A direct-mode client's choice of worker (Client/WorkerLinks.swift), over real PUSH sockets
/// connected to PULLs in this process.
@Suite struct WorkerLinksTests {
    final class Workers {
        let context: Context
        var pulls: [String: Socket] = [:]
        var links = WorkerLinks(leaveLinger: .seconds(5))

        init(_ count: Int) throws {
            context = try Context()
            for n in 0..<count {
                let pull = try Socket(context, .pull)
                let endpoint = try pull.bind("tcp://127.0.0.1:0")
                pulls[endpoint] = pull
                let push = try Socket(context, .push)
                try push.connect(endpoint)
                links.add(workerID: [UInt8(n)], endpoint: endpoint, socket: push)
            }
        }

        deinit {
            links.closeAll()
            for pull in pulls.values { pull.close() }
        }
    }

    @Test func theWorkerWithFewestUnansweredJobsComesFirstAndEqualsTakeTurns() throws {
        let workers = try Workers(3)
        let ids = workers.links.links.map(\.id)
        #expect(workers.links.sendOrder(after: 0).map(\.id) == ids)
        // Equal loads: the one after the last used comes first, round robin.
        #expect(workers.links.sendOrder(after: ids[0]).map(\.id) == [ids[1], ids[2], ids[0]])
        #expect(workers.links.sendOrder(after: ids[2]).map(\.id) == [ids[0], ids[1], ids[2]])
        workers.links.sent(5, to: ids[0])
        workers.links.sent(2, to: ids[1])
        #expect(workers.links.sendOrder(after: ids[2]).map(\.id) == [ids[2], ids[1], ids[0]])
        for _ in 0..<4 { workers.links.answered(by: ids[0]) }
        #expect(workers.links.sendOrder(after: ids[2]).map(\.id) == [ids[2], ids[0], ids[1]])
        // Answers for unknown links, or more answers than jobs sent, change nothing.
        workers.links.answered(by: 0)
        workers.links.answered(by: 999)
        for _ in 0..<9 { workers.links.answered(by: ids[2]) }
        #expect(workers.links.links.map(\.unanswered) == [1, 2, 0])
    }

    /// A worker that leaves still gets what was queued for it: its socket closes with a linger
    /// instead of being disconnected, which would drop the queue. The worker here reads nothing
    /// until the link is dropped, so most of the 16 MiB sent still waits in the client's queue.
    @Test func aLeavingWorkerStillReceivesWhatWasQueuedForIt() async throws {
        let workers = try Workers(1)
        let staying = workers.links.links[0]
        var slow = SocketDefaults.standard
        slow.receiveHighWaterMark = 2
        let receiver = try Socket(workers.context, .pull, defaults: slow)
        let endpoint = try receiver.bind("tcp://127.0.0.1:0")
        let push = try Socket(workers.context, .push)
        try push.connect(endpoint)
        workers.links.add(workerID: [9], endpoint: endpoint, socket: push)
        let count = 256
        try push.set(.sendTimeout, .seconds(10))
        for i in 0..<count { try push.send([UInt8(i & 0xFF)] + [UInt8](repeating: 0, count: 64 * 1024 - 1)) }
        let generation = workers.links.generation
        let dropped = workers.links.keepOnly([staying.endpoint])
        #expect(dropped == [endpoint])
        #expect(workers.links.count == 1 && workers.links.contains(endpoint: staying.endpoint))
        #expect(workers.links.generation != generation)
        try receiver.set(.receiveTimeout, .seconds(10))
        nonisolated(unsafe) let socket = receiver
        let received = try await offPool {
            var received = 0
            while received < count, (try? socket.receive()) != nil { received += 1 }
            return received
        }
        #expect(received == count)
        receiver.close()
    }

    /// A worker that leaves with jobs unanswered keeps its link open, out of the send order:
    /// what was sent to it (a CANCEL) still goes there, and if it rejoins it gets the same link
    /// back. Once its last job is answered the link closes.
    @Test func aWorkerThatLeavesWithJobsUnansweredKeepsItsLinkUntilTheyAre() throws {
        let workers = try Workers(2)
        let (busy, idle) = (workers.links.links[0], workers.links.links[1])
        workers.links.sent(2, to: busy.id)
        let dropped = workers.links.keepOnly([])
        #expect(dropped.count == 2)
        #expect(workers.links.isEmpty && workers.links.retired.map(\.id) == [busy.id])
        #expect(workers.links.link(busy.id) === busy && !workers.links.isCurrent(busy.id))
        #expect(workers.links.link(idle.id) == nil, "a link with nothing unanswered closes at once")
        #expect(workers.links.sendOrder(after: 0).isEmpty)

        // Rejoining: the same link comes back, with what it advertises now.
        let now = Capabilities(handlers: ["echo"], labels: [])
        let revived = workers.links.revive(workerID: busy.workerID, endpoint: busy.endpoint, capabilities: now)
        #expect(revived)
        #expect(workers.links.links.map(\.id) == [busy.id] && workers.links.retired.isEmpty)
        #expect(busy.capabilities == now && busy.unanswered == 2 && workers.links.isCurrent(busy.id))

        // Leaving again: it closes with its last answer.
        _ = workers.links.keepOnly([])
        workers.links.answered(by: busy.id)
        #expect(workers.links.link(busy.id) === busy)
        workers.links.answered(by: busy.id)
        #expect(workers.links.link(busy.id) == nil && workers.links.retired.isEmpty)
        let revivedClosed = workers.links.revive(workerID: busy.workerID, endpoint: busy.endpoint, capabilities: now)
        #expect(!revivedClosed, "a closed link does not come back")
    }

    /// Another process at the endpoint of a retired link is a new worker: it gets a new link,
    /// and the old one closes.
    @Test func aNewWorkerAtARetiredLinksEndpointDoesNotInheritIt() throws {
        let workers = try Workers(1)
        let old = workers.links.links[0]
        workers.links.sent(1, to: old.id)
        _ = workers.links.keepOnly([])
        let inherited = workers.links.revive(workerID: [0xEE], endpoint: old.endpoint, capabilities: .unknown)
        #expect(!inherited)
        #expect(workers.links.link(old.id) == nil && workers.links.retired.isEmpty)
    }

    /// Workers that leave with jobs unanswered and never come back keep at most
    /// `maxRetired` links open; the oldest close first.
    @Test func retiredLinksAreBounded() throws {
        let workers = try Workers(0)
        var first: UInt32 = 0
        for n in 0...WorkerLinks.maxRetired {
            let push = try Socket(workers.context, .push)
            try push.set(.linger, .zero)
            workers.links.add(workerID: [UInt8(n & 0xFF), UInt8(n >> 8)], endpoint: "tcp://127.0.0.1:\(20000 + n)", socket: push)
            let id = workers.links.links[0].id
            if n == 0 { first = id }
            workers.links.sent(1, to: id)
            _ = workers.links.keepOnly([])
        }
        #expect(workers.links.retired.count == WorkerLinks.maxRetired)
        #expect(workers.links.link(first) == nil, "the oldest retired link closed")
    }
}
