// A view of everything a `BrokerState` holds, for tests and diagnostics.

extension BrokerState {
    /// A live job as tests and diagnostics see it.
    struct JobView: Equatable {
        var attempt: UInt16
        /// The routing id of the worker connection running the current attempt; nil while queued.
        var worker: [UInt8]? = nil
        var leaseUntil: Instant? = nil
        /// The routing id of the worker connection a job waiting for another worker keeps away
        /// from (its last attempt overran its lease there); nil for none.
        var avoiding: [UInt8]? = nil
    }

    /// A worker connection as tests and diagnostics see it.
    struct WorkerView {
        var workerID: [UInt8]
        var running: Set<JobKey>
        var stuck: Int
        var free: Int
        var draining: Bool
        /// What it advertised last.
        var capabilities: Capabilities
    }

    /// Everything the broker holds, built anew on each call (it walks every job: not for the
    /// loop's hot path).
    struct Snapshot {
        var jobs: [JobKey: JobView] = [:]
        /// The queued jobs, lane after lane in the order a worker able to run them all would be
        /// offered the lanes before aging (higher priority first, then by turn), each lane first
        /// come, first served.
        var queue: [JobKey] = []
        /// How many jobs are queued per handler name.
        var queuedPerHandler: [String: Int] = [:]
        /// Jobs waiting for a worker other than the one their last attempt overran its lease on.
        var handoffs: [JobKey] = []
        var workers: [[UInt8]: WorkerView] = [:]
    }

    var snapshot: Snapshot {
        var snapshot = Snapshot()
        var routing: [UInt32: [UInt8]] = [:]
        for (id, slot) in workers {
            routing[slot.holder] = id
            snapshot.workers[id] = WorkerView(workerID: slot.workerID, running: [], stuck: slot.stuck, free: slot.free,
                                              draining: slot.draining, capabilities: queues.routes[Int(slot.route)].capabilities)
        }
        func key(_ slot: BrokerJobs.Slot) -> JobKey { JobKey(clientID: slot.message.clientID, jobID: slot.message.jobID) }
        for slot in jobs.slots where slot.phase == .queued || slot.phase == .running {
            let holder = slot.phase == .running ? routing[slot.holder] : nil
            snapshot.jobs[key(slot)] = JobView(attempt: slot.attempt, worker: holder, leaseUntil: slot.leaseUntil)
            if let holder { snapshot.workers[holder]?.running.insert(key(slot)) }
        }
        for slot in handoffs {
            snapshot.jobs[key(jobs[slot])] = JobView(attempt: jobs[slot].attempt, avoiding: routing[jobs[slot].avoid])
            snapshot.handoffs.append(key(jobs[slot]))
        }
        snapshot.queue = queues.lanesInOrder.flatMap { queues.lanes[Int($0)].slots.map { key(jobs[$0]) } }
        snapshot.queuedPerHandler = queues.queuedPerHandler
        return snapshot
    }
}
