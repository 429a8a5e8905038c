/// Jobs the broker ends without a worker's answer: those whose deadline passed in its queue
/// (`expired`) and those no live worker can run (`unroutable`).
extension BrokerState {
    /// Ends the queued job in `slot` (already out of its lane) as `expired`: its deadline passed
    /// before any worker took it. Its client has timed it out; the answer frees its place.
    mutating func expire(_ slot: Int32, now: Instant) {
        stats.expired += 1
        let message = jobs[slot].message
        finish(slot, with: ResultMessage(status: .expired, attempt: jobs[slot].attempt, clientID: message.clientID, jobID: message.jobID,
                                         body: Array("its deadline passed while it was queued at the broker".utf8)), now: now)
    }

    /// Ends, as `expired`, each queued job whose deadline is at or before `now` in the lanes some
    /// live worker can run (the others are `endUnroutable`'s): jobs waiting for a free slot free
    /// their place in the queue without waiting for one. One pass over the queued jobs per tick,
    /// reading one stored deadline each.
    mutating func endExpired(now: Instant) {
        guard !queues.isEmpty else { return }
        var removed: Set<Int32> = []
        for lane in queues.active where queues.classes[Int(queues.lanes[Int(lane)].routingClass)].runnable {
            for slot in queues.lanes[Int(lane)].slots {
                if let deadline = jobs[slot].deadline, deadline <= now { removed.insert(slot) }
            }
            guard !removed.isEmpty else { continue }
            let ended = queues.lanes[Int(lane)].slots.filter { removed.contains($0) }
            queues.remove(removed, from: lane)
            for slot in ended { expire(slot, now: now) }
            removed.removeAll(keepingCapacity: true)
        }
    }

    /// Ends, as `unroutable`, each queued job no live worker can run that has waited
    /// `config.unroutableTimeout` since it was submitted or since the last worker able to run it
    /// left or drained (whichever is later), or whose deadline (the monotonic one fixed at
    /// submission) is at or before `now`. Looks only at lanes no live worker can run.
    mutating func endUnroutable(now: Instant) {
        let lanes = queues.unroutableLanes
        guard !lanes.isEmpty else { return }
        let offered = queues.offered
        for lane in lanes {
            let routing = queues.classes[Int(queues.lanes[Int(lane)].routingClass)]
            var ended: [(slot: Int32, missedDeadline: Bool)] = []
            for slot in queues.lanes[Int(lane)].slots {
                if let deadline = jobs[slot].deadline, deadline <= now {
                    ended.append((slot, true))
                } else if now - max(jobs[slot].queuedAt, routing.unroutableSince) >= config.unroutableTimeout {
                    ended.append((slot, false))
                }
            }
            guard !ended.isEmpty else { continue }
            queues.remove(Set(ended.map(\.slot)), from: lane)
            let missing = RouteMessage.missing(handler: routing.handler, requires: routing.requires, handlers: offered.handlers,
                                               labels: offered.labels)
            for (slot, missedDeadline) in ended {
                stats.unroutable += 1
                let waited = missedDeadline ? "before the deadline, " : "for \(ValueParsing.format(config.unroutableTimeout)), "
                let message = jobs[slot].message
                finish(slot, with: ResultMessage(status: .unroutable, attempt: jobs[slot].attempt, clientID: message.clientID,
                                                 jobID: message.jobID, body: Array((waited + missing).utf8)), now: now)
            }
        }
    }
}
