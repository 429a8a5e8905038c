// The worker connections of a `BrokerState` and how dispatch picks the next one.

extension BrokerState {
    struct WorkerSlot {
        let workerID: [UInt8]
        /// Names this connection in the jobs it runs; never reused within a broker's run. A new
        /// connection of the same worker process takes over the jobs of the old one.
        var holder: UInt32
        /// The credit of its last READY: how many jobs it asks to hold at once.
        var concurrency: Int
        /// How many attempts with a live lease it has earned the right to hold: a new worker
        /// starts at `initialWindow`, each answer to an attempt it held adds one (up to
        /// `concurrency`), and a wake-up in which attempts it held overran their lease halves
        /// it (down to one). A peer that claims many slots and answers nothing holds few jobs;
        /// an honest one reaches its credit within a few round trips. Stuck slots count against
        /// the credit only, so a worker whose hung handlers hold slots still runs jobs in the
        /// others.
        var window = BrokerState.initialWindow
        /// Attempts it runs for the broker.
        var running = 0
        /// Slots still held by attempts whose lease expired (a hung handler keeps its slot).
        var stuck = 0
        var lastSeen: Instant
        var draining = false
        /// Its number in `BrokerQueues.routes`: what it can run.
        let route: Int32
        var free: Int { draining ? 0 : max(0, min(concurrency - stuck, window) - running) }

        /// An attempt it held was answered: it earns one more slot, up to its credit.
        mutating func earn() {
            if window < concurrency { window += 1 }
        }

        /// Attempts it held overran their lease: half the slots it had.
        mutating func forfeit() {
            window = max(1, min(window, concurrency) / 2)
        }
    }

    /// The slots a worker that has answered nothing yet may hold (`WorkerSlot.window`).
    static let initialWindow = 64

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
