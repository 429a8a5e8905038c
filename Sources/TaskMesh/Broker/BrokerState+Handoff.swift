/// Jobs whose attempt overran its lease on one worker, waiting for another to run the next
/// attempt (docs/RELIABILITY.md, "Peers that take jobs and answer none"). A worker that lets
/// leases run out, a peer that swallows jobs or one whose handler hangs, would otherwise get
/// the same job back while its slots look free, until the job's attempts are used up.
extension BrokerState {
    /// Holds the job in `slot` (its next attempt, taken from the queue for the connection it
    /// overran on) until a worker that can run it has room; `placeHandoffs` sends it there.
    mutating func handOff(_ slot: Int32) {
        jobs[slot].phase = .waiting
        handoffs.append(slot)
    }

    /// Sends each held job to the worker, other than the one it overran on, with the most free
    /// slots that can run it. One that no other worker can run any longer goes back to the
    /// front of the queue, where that worker may take it; one whose deadline has passed ends
    /// `expired`; the others keep waiting.
    mutating func placeHandoffs(lease: Instant, now: Instant) {
        guard !handoffs.isEmpty else { return }
        var waiting: [Int32] = []
        for slot in handoffs {
            if let deadline = jobs[slot].deadline, deadline <= now {
                expire(slot, now: now)
            } else if let target = roomElsewhere(for: slot, avoiding: jobs[slot].avoid) {
                startAttempt(slot, on: target, lease: lease, now: now)
                stats.retriedElsewhere += 1
            } else if canRunElsewhere(slot, avoiding: jobs[slot].avoid) {
                waiting.append(slot)
            } else {
                jobs[slot].avoid = 0
                jobs[slot].avoidStrictly = false
                putBackFirst(slot, now: now)
            }
        }
        handoffs = waiting
    }

    /// Forgets a held job (it was cancelled or ends otherwise).
    mutating func dropHandoff(_ slot: Int32) {
        handoffs.removeAll { $0 == slot }
    }

    /// The ready worker with the most free slots that can run the job in `slot`, other than the
    /// connection `avoid` names (0: none); nil when none has a free slot.
    func roomElsewhere(for slot: Int32, avoiding avoid: UInt32) -> Dictionary<[UInt8], WorkerSlot>.Index? {
        guard let routing = queues.routingClass(of: jobs[slot].message) else { return nil }
        var best: Dictionary<[UInt8], WorkerSlot>.Index?
        var bestFree = 0
        for index in workers.indices where workers.values[index].holder != avoid {
            let free = workers.values[index].free
            guard free > bestFree, queues.routes[Int(workers.values[index].route)].live,
                  queues.routes[Int(workers.values[index].route)].runs[Int(routing)] else { continue }
            (best, bestFree) = (index, free)
        }
        return best
    }

    /// Whether a ready worker other than the connection `avoid` names can run the job in `slot`
    /// at all, free slots or not.
    func canRunElsewhere(_ slot: Int32, avoiding avoid: UInt32) -> Bool {
        guard let routing = queues.routingClass(of: jobs[slot].message) else { return false }
        for index in workers.indices where workers.values[index].holder != avoid && !workers.values[index].draining {
            let route = queues.routes[Int(workers.values[index].route)]
            if route.live && route.runs[Int(routing)] { return true }
        }
        return false
    }
}
