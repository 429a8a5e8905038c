/// The sink's table of live workers: who announced, where clients reach them, and when each was
/// last heard from. Pure bookkeeping, driven by the sink loop's clock.
struct Membership {
    struct Entry: Equatable {
        var endpoint: String
        var concurrency: UInt16
        var publicKey: [UInt8]
        var capabilities: Capabilities = .unknown
        var lastSeen: Instant
    }

    private(set) var workers: [[UInt8]: Entry] = [:]
    /// Changes whenever the set of workers, their endpoints or their capabilities change.
    private(set) var epoch: UInt64

    init(epoch: UInt64 = UInt64.random(in: 1...UInt64(UInt32.max))) {
        self.epoch = epoch
    }

    /// Records an announcement; returns true when the member list changed.
    mutating func announce(_ message: AnnounceMessage, at now: Instant) -> Bool {
        let entry = Entry(endpoint: message.endpoint, concurrency: message.concurrency, publicKey: message.publicKey,
                          capabilities: message.capabilities, lastSeen: now)
        let previous = workers.updateValue(entry, forKey: message.workerID)
        let changed = previous?.endpoint != entry.endpoint || previous?.concurrency != entry.concurrency
            || previous?.publicKey != entry.publicKey || previous?.capabilities != entry.capabilities
        if changed { epoch &+= 1 }
        return changed
    }

    /// Removes a worker that said goodbye; returns true when it was a member.
    mutating func remove(_ workerID: [UInt8]) -> Bool {
        guard workers.removeValue(forKey: workerID) != nil else { return false }
        epoch &+= 1
        return true
    }

    /// Drops workers silent for longer than `expiry`; returns the ids dropped.
    mutating func expire(olderThan expiry: Duration, at now: Instant) -> [[UInt8]] {
        let dead = workers.filter { now - $0.value.lastSeen > expiry }.map(\.key)
        for id in dead { workers.removeValue(forKey: id) }
        if !dead.isEmpty { epoch &+= 1 }
        return dead
    }

    /// The current list, in a stable order.
    var message: MembersMessage {
        let members = workers
            .map { MembersMessage.Member(workerID: $0.key, endpoint: $0.value.endpoint, concurrency: $0.value.concurrency,
                                         publicKey: $0.value.publicKey, capabilities: $0.value.capabilities) }
            .sorted { a, b in a.endpoint != b.endpoint ? a.endpoint < b.endpoint : a.workerID.lexicographicallyPrecedes(b.workerID) }
        return MembersMessage(epoch: epoch, members: Array(members.prefix(Wire.maxMembers)))
    }
}
