/// What the sink knows of one client that listens to the membership: when it last said HELLO,
/// and which member list it was last sent in full, so that heartbeats to a client that holds the
/// current list carry only a short "unchanged" MEMBERS.
struct MemberListener {
    /// Every this many heartbeats a client is sent the full list even when it holds it, in case
    /// one was lost on the way (the sink's sends never block).
    static let refreshEvery = 10

    var lastHeard: Instant
    /// The epoch of the last full list sent; nil before the first.
    private(set) var fullEpoch: UInt64?
    private var unchangedSent = 0

    init(lastHeard: Instant) { self.lastHeard = lastHeard }

    func needsFullList(epoch: UInt64) -> Bool {
        fullEpoch != epoch || unchangedSent + 1 >= Self.refreshEvery
    }

    mutating func sentFull(epoch: UInt64) {
        fullEpoch = epoch
        unchangedSent = 0
    }

    mutating func sentUnchanged() { unchangedSent += 1 }
}
