// The worker connections of a `BrokerState` and how dispatch picks the next one.

extension BrokerState {
    struct WorkerSlot {
        let workerID: [UInt8]
        /// Names this connection in the jobs it runs; never reused within a broker's run. A new
        /// connection of the same worker process takes over the jobs of the old one.
        var holder: UInt32
        var concurrency: Int
        /// Attempts it runs for the broker.
        var running = 0
        /// Slots still held by attempts whose lease expired (a hung handler keeps its slot).
        var stuck = 0
        var lastSeen: Instant
        var draining = false
        /// Its number in `BrokerQueues.routes`: what it can run.
        let route: Int32
        var free: Int { draining ? 0 : max(0, concurrency - running - stuck) }
    }

    var readyWorkers: Int {
        var count = 0
        for index in workers.indices where !workers.values[index].draining { count += 1 }
        return count
    }

    /// The worker with the most free slots (the first of equals), and how many jobs it takes
    /// before another has as many free (at least one); nil when none has a free slot. Workers
    /// whose holder is in `passedOver` do not count.
    func nextShare(passingOver passedOver: [UInt32]) -> (Dictionary<[UInt8], WorkerSlot>.Index, Int)? {
        var best: Dictionary<[UInt8], WorkerSlot>.Index?
        var bestFree = 0
        var secondFree = 0
        for index in workers.indices {
            let free = workers.values[index].free
            guard free > secondFree, passedOver.isEmpty || !passedOver.contains(workers.values[index].holder) else { continue }
            if free > bestFree {
                secondFree = bestFree
                (best, bestFree) = (index, free)
            } else {
                secondFree = free
            }
        }
        guard let best else { return nil }
        return (best, max(1, bestFree - secondFree))
    }
}
