import Testing
@testable import TaskMesh

// The sink's table of live workers (Sink/Membership.swift). Time is explicit: every call gets an
// instant built from one `Instant.current`, so nothing sleeps and nothing depends on timing.

private func announce(_ id: String, _ endpoint: String, concurrency: UInt16 = 4) -> AnnounceMessage {
    AnnounceMessage(workerID: Array(id.utf8), endpoint: endpoint, concurrency: concurrency)
}

private func wid(_ id: String) -> [UInt8] { Array(id.utf8) }


@Suite struct MembershipTests {
    let t0 = Instant.current

    @Test func startsEmptyWithARandomNonZeroEpoch() {
        let membership = Membership()
        #expect(membership.workers.isEmpty)
        #expect((1...UInt64(UInt32.max)).contains(membership.epoch))
        #expect(membership.message == MembersMessage(epoch: membership.epoch, members: []))
    }

    @Test func announceAddsAWorkerAndChangesTheEpoch() {
        var membership = Membership(epoch: 10)
        let added = membership.announce(announce("w1", "tcp://a:1", concurrency: 3), at: t0)
        #expect(added)
        #expect(membership.epoch != 10)
        #expect(membership.workers[wid("w1")] == .init(endpoint: "tcp://a:1", concurrency: 3, publicKey: [], lastSeen: t0))

        let afterFirst = membership.epoch
        let addedSecond = membership.announce(announce("w2", "tcp://b:1"), at: t0 + .seconds(1))
        #expect(addedSecond)
        #expect(membership.epoch != afterFirst)
        #expect(membership.workers.count == 2)
        #expect(membership.message.members == [
            .init(workerID: wid("w1"), endpoint: "tcp://a:1", concurrency: 3),
            .init(workerID: wid("w2"), endpoint: "tcp://b:1", concurrency: 4),
        ])
    }

    @Test func reannouncingTheSameEndpointKeepsTheEpochButRefreshesLastSeen() {
        var membership = Membership(epoch: 10)
        _ = membership.announce(announce("w1", "tcp://a:1"), at: t0)
        let epoch = membership.epoch
        let before = membership.message

        let changed = membership.announce(announce("w1", "tcp://a:1"), at: t0 + .seconds(8))
        #expect(!changed)
        #expect(membership.epoch == epoch)
        #expect(membership.message == before)
        #expect(membership.workers[wid("w1")]?.lastSeen == t0 + .seconds(8))

        // 15 s after the first announce but only 7 s after the heartbeat: still alive.
        let expiredEarly = membership.expire(olderThan: .seconds(10), at: t0 + .seconds(15))
        #expect(expiredEarly.isEmpty)
        #expect(membership.workers[wid("w1")] != nil)
        #expect(membership.epoch == epoch)
        // Silent for 11 s since the heartbeat: gone.
        let expiredLate = membership.expire(olderThan: .seconds(10), at: t0 + .seconds(19))
        #expect(expiredLate == [wid("w1")])
        #expect(membership.workers.isEmpty)
    }

    @Test func announcingANewEndpointOrConcurrencyChangesTheEpoch() {
        var membership = Membership(epoch: 10)
        _ = membership.announce(announce("w1", "tcp://a:1", concurrency: 2), at: t0)
        let first = membership.epoch

        let changedEndpoint = membership.announce(announce("w1", "tcp://a:2", concurrency: 2), at: t0 + .seconds(1))
        #expect(changedEndpoint)
        let second = membership.epoch
        #expect(second != first)
        #expect(membership.workers.count == 1)
        #expect(membership.message.members == [.init(workerID: wid("w1"), endpoint: "tcp://a:2", concurrency: 2)])

        let changedConcurrency = membership.announce(announce("w1", "tcp://a:2", concurrency: 5), at: t0 + .seconds(2))
        #expect(changedConcurrency)
        #expect(membership.epoch != second)
        #expect(membership.epoch != first)
        #expect(membership.message.members == [.init(workerID: wid("w1"), endpoint: "tcp://a:2", concurrency: 5)])
    }

    @Test func removeDropsAMemberAndChangesTheEpoch() {
        var membership = Membership(epoch: 10)
        _ = membership.announce(announce("w1", "tcp://a:1"), at: t0)
        _ = membership.announce(announce("w2", "tcp://b:1"), at: t0)
        let epoch = membership.epoch

        let removed = membership.remove(wid("w1"))
        #expect(removed)
        #expect(membership.epoch != epoch)
        #expect(membership.workers.keys.sorted { $0.lexicographicallyPrecedes($1) } == [wid("w2")])

        let afterRemove = membership.epoch
        let again = membership.remove(wid("w1"))  // already gone
        #expect(!again)
        let removedStranger = membership.remove(wid("nobody"))
        #expect(!removedStranger)
        let removedEmptyID = membership.remove([])
        #expect(!removedEmptyID)
        #expect(membership.epoch == afterRemove)
        #expect(membership.workers.count == 1)
    }

    @Test func expireDropsOnlySilentWorkersAndChangesTheEpochOnlyWhenItDrops() {
        var membership = Membership(epoch: 10)
        _ = membership.announce(announce("old", "tcp://a:1"), at: t0)
        _ = membership.announce(announce("mid", "tcp://b:1"), at: t0 + .seconds(5))
        _ = membership.announce(announce("new", "tcp://c:1"), at: t0 + .seconds(9))
        let epoch = membership.epoch

        // Nobody is silent for more than 10 s yet.
        let expiredNone = membership.expire(olderThan: .seconds(10), at: t0 + .seconds(10))
        #expect(expiredNone.isEmpty)
        #expect(membership.epoch == epoch)
        #expect(membership.workers.count == 3)

        let expired = membership.expire(olderThan: .seconds(10), at: t0 + .seconds(12))
        #expect(expired == [wid("old")])
        let afterFirst = membership.epoch
        #expect(afterFirst != epoch)
        #expect(Set(membership.workers.keys) == [wid("mid"), wid("new")])

        // Again at the same instant: nothing more to drop, no epoch change.
        let expiredAgain = membership.expire(olderThan: .seconds(10), at: t0 + .seconds(12))
        #expect(expiredAgain.isEmpty)
        #expect(membership.epoch == afterFirst)

        // Much later both remaining are dropped in one sweep, with one epoch change.
        let dropped = membership.expire(olderThan: .seconds(10), at: t0 + .seconds(60))
        #expect(Set(dropped) == [wid("mid"), wid("new")])
        #expect(dropped.count == 2)
        #expect(membership.workers.isEmpty)
        #expect(membership.epoch != afterFirst)

        let emptyEpoch = membership.epoch
        let expiredFromEmpty = membership.expire(olderThan: .seconds(10), at: t0 + .seconds(600))
        #expect(expiredFromEmpty.isEmpty)
        #expect(membership.epoch == emptyEpoch)
    }

    @Test func aWorkerSilentForExactlyTheExpiryIsKept() {
        var membership = Membership(epoch: 1)
        _ = membership.announce(announce("w1", "tcp://a:1"), at: t0)
        let expiredAtLimit = membership.expire(olderThan: .seconds(3), at: t0 + .seconds(3))
        #expect(expiredAtLimit.isEmpty)
        let expiredPastLimit = membership.expire(olderThan: .seconds(3), at: t0 + .seconds(3) + .nanoseconds(1))
        #expect(expiredPastLimit == [wid("w1")])
    }

    @Test func epochWrapsAroundInsteadOfTrapping() {
        var membership = Membership(epoch: .max)
        let added = membership.announce(announce("w1", "tcp://a:1"), at: t0)
        #expect(added)
        #expect(membership.epoch != .max)
    }

    @Test func messageListsMembersSortedByEndpoint() throws {
        var membership = Membership(epoch: 77)
        // Announced in an order unrelated to both worker id and endpoint.
        _ = membership.announce(announce("w-b", "tcp://host-c:1", concurrency: 1), at: t0)
        _ = membership.announce(announce("w-c", "ipc:///tmp/z", concurrency: 2), at: t0)
        _ = membership.announce(announce("w-a", "tcp://host-a:9", concurrency: 3), at: t0)
        _ = membership.announce(AnnounceMessage(workerID: [0x00, 0xFF], endpoint: "inproc://ü", concurrency: 4), at: t0)

        let message = membership.message
        #expect(message.epoch == membership.epoch)
        #expect(message.members.map(\.endpoint) == ["inproc://ü", "ipc:///tmp/z", "tcp://host-a:9", "tcp://host-c:1"])
        #expect(message.members.map(\.workerID) == [[0x00, 0xFF], wid("w-c"), wid("w-a"), wid("w-b")])
        #expect(message.members.map(\.concurrency) == [4, 2, 3, 1])
        // What the sink sends is what a client decodes.
        #expect(try MembersMessage.decode(message.encode()) == message)
        // Asking twice gives the same list.
        #expect(membership.message == message)
    }

    @Test func messageIsCappedAtTheProtocolMaximum() throws {
        var membership = Membership(epoch: 5)
        let total = Wire.maxMembers + 4
        // Endpoints that sort in the order of their number; announced from the last to the first.
        func endpoint(_ i: Int) -> String {
            let digits = String(i)
            return "tcp://h:" + String(repeating: "0", count: 5 - digits.count) + digits
        }
        for i in (0..<total).reversed() {
            _ = membership.announce(announce("w\(i)", endpoint(i)), at: t0)
        }
        #expect(membership.workers.count == total)

        let message = membership.message
        #expect(message.members.count == Wire.maxMembers)
        #expect(message.members.map(\.endpoint) == (0..<Wire.maxMembers).map(endpoint))
        let encoded = message.encode()
        #expect(Array(wireParts(encoded)[1].prefix(2)) == [0x10, 0x00])  // count 4096
        #expect(try MembersMessage.decode(encoded) == message)
    }

    /// Seeded random announces, byes and sweeps: the epoch changes exactly when the list a client
    /// would receive changes, so a client that skips an epoch it already applied never misses a
    /// change and never reapplies an unchanged list.
    @Test func epochChangesExactlyWhenTheListChanges() {
        var rng = SplitMix64(seed: 0x4D45_4D42_4552_5331)
        var membership = Membership(epoch: 1000)
        var now = t0
        var changes = 0
        for step in 0..<5_000 {
            let before = membership.message
            let id = "w\(rng.below(12))"
            switch rng.below(10) {
            case 0..<6:
                let changed = membership.announce(announce(id, "tcp://h:\(rng.below(3))", concurrency: UInt16(rng.below(3))), at: now)
                #expect(changed == (membership.message.members != before.members), "step \(step)")
            case 6, 7:
                _ = membership.remove(wid(id))
            default:
                _ = membership.expire(olderThan: .seconds(5), at: now)
            }
            now += .milliseconds(rng.below(1500))
            let after = membership.message
            let listChanged = after.members != before.members
            let epochChanged = after.epoch != before.epoch
            if listChanged { changes += 1 }
            #expect(listChanged == epochChanged, "step \(step): list changed \(listChanged), epoch changed \(epochChanged)")
            if listChanged != epochChanged { break }
        }
        #expect(changes > 500)  // the walk did exercise changes
    }
}
