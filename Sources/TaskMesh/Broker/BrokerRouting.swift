// Which worker connection can run which routing class, and which queued jobs a worker gets.

extension BrokerQueues {
    /// A worker connection as routing sees it.
    struct Route {
        var capabilities: Capabilities
        /// It takes jobs: connected and not draining.
        var live: Bool
        /// `runs[c]`: it can run routing class `c`.
        var runs: [Bool] = []
        var inUse = true
    }

    /// Aging: a priority's standing rises by one for every `agingStep` the oldest job queued
    /// at it has waited, up to the highest priority.
    static let agingStep: Duration = .seconds(1)

    // MARK: Workers

    /// Numbers a new worker connection that advertised `capabilities`.
    mutating func addRoute(_ capabilities: Capabilities, live: Bool, now: Instant) -> Int32 {
        let index = routes.place(Route(capabilities: capabilities, live: live, runs: runs(of: capabilities)), reusing: &freeRoutes)
        refreshRunnable(now: now)
        return index
    }

    /// A worker advertised again (`capabilities` replace the old ones) or started or stopped
    /// taking jobs; nothing is worked out again when nothing changed.
    mutating func updateRoute(_ route: Int32, capabilities: Capabilities? = nil, live: Bool, now: Instant) {
        let index = Int(route)
        let advertised = capabilities.map { $0 != routes[index].capabilities } ?? false
        guard advertised || routes[index].live != live else { return }
        routes[index].live = live
        if advertised, let capabilities {
            routes[index].capabilities = capabilities
            routes[index].runs = runs(of: capabilities)
        }
        refreshRunnable(now: now)
    }

    /// The worker connection is gone.
    mutating func removeRoute(_ route: Int32, now: Instant) {
        routes[Int(route)] = Route(capabilities: .unknown, live: false, inUse: false)
        freeRoutes.append(route)
        refreshRunnable(now: now)
    }

    /// Every handler name and label the live workers advertise, sorted (for `unroutable`
    /// outcomes).
    var offered: (handlers: [String], labels: [String]) {
        let live = routes.filter { $0.inUse && $0.live }
        let handlers = Set(live.flatMap { $0.capabilities.handlers ?? [] })
        return (handlers.sorted(), Set(live.flatMap(\.capabilities.labels)).sorted())
    }

    /// The lanes holding jobs that no live worker can run.
    var unroutableLanes: [Int32] {
        active.filter { !classes[Int(lanes[Int($0)].routingClass)].runnable }
    }

    /// Works out which workers can run the new class `routing`, and so whether it is runnable.
    mutating func learn(_ routing: Int32) {
        let handler = classes[Int(routing)].handler, requires = classes[Int(routing)].requires
        var runnable = false
        for index in routes.indices {
            let can = routes[index].inUse && routes[index].capabilities.canRun(handler, requiring: requires)
            while routes[index].runs.count <= Int(routing) { routes[index].runs.append(false) }
            routes[index].runs[Int(routing)] = can
            runnable = runnable || (can && routes[index].live)
        }
        classes[Int(routing)].runnable = runnable
    }

    private func runs(of capabilities: Capabilities) -> [Bool] {
        classes.map { capabilities.canRun($0.handler, requiring: $0.requires) }
    }

    /// Marks each class runnable or not from the live workers, noting when one stops being.
    private mutating func refreshRunnable(now: Instant) {
        for routing in classes.indices {
            let runnable = routes.contains { $0.inUse && $0.live && $0.runs[routing] }
            if classes[routing].runnable && !runnable { classes[routing].unroutableSince = now }
            classes[routing].runnable = runnable
        }
    }

    // MARK: Dispatch

    /// Takes up to `limit` queued jobs for the worker connection `route` into `taken`, only of
    /// classes it can run, and returns how many. The rules:
    ///
    /// 1. Priority, with aging: each priority has a standing, its value plus one for every
    ///    `agingStep` the oldest job queued at it (of those this worker can run) has waited,
    ///    at most 9. The priorities of the highest standing go first.
    /// 2. Round robin: the lanes of those priorities give one job each per round, in turn
    ///    order (the lane served longest ago first; a lane with a requeued job first of all).
    ///    So clients of one priority share a worker evenly, however many jobs each queued.
    /// 3. A lane alone at the top gives jobs in one run, until it empties or its standing falls
    ///    to another priority's (its next job is younger); then the choice is made again.
    mutating func take(for route: Int32, upTo limit: Int, now: Instant, jobs: BrokerJobs) -> Int {
        taken.removeAll(keepingCapacity: true)
        let runs = routes[Int(route)].runs
        while taken.count < limit {
            var eligible = 0
            var lone: Int32 = -1
            for lane in active where runs[Int(lanes[Int(lane)].routingClass)] {
                eligible += 1
                lone = lane
                if eligible > 1 { break }
            }
            if eligible == 0 { break }
            if eligible == 1 {
                takeRun(from: lone, upTo: limit, above: nil, now: now, jobs: jobs)
            } else {
                takeRound(runs: runs, upTo: limit, now: now, jobs: jobs)
            }
        }
        return taken.count
    }

    /// One choice among several lanes the worker can run: the lanes of the priorities of
    /// highest standing give one job each, in turn order, or the only one gives a run.
    private mutating func takeRound(runs: [Bool], upTo limit: Int, now: Instant, jobs: BrokerJobs) {
        var best = 0
        var topPriorities: UInt16 = 0
        for lane in active where runs[Int(lanes[Int(lane)].routingClass)] {
            let standing = self.standing(of: lane, now: now, jobs: jobs)
            if standing > best { (best, topPriorities) = (standing, 0) }
            if standing == best { topPriorities |= 1 << lanes[Int(lane)].priority }
        }
        var round: [Int32] = []
        swap(&round, &scratch)
        round.removeAll(keepingCapacity: true)
        var runnerUp: Int?
        for lane in active where runs[Int(lanes[Int(lane)].routingClass)] {
            if topPriorities & (1 << lanes[Int(lane)].priority) != 0 {
                round.append(lane)
            } else {
                runnerUp = max(runnerUp ?? 0, standing(of: lane, now: now, jobs: jobs))
            }
        }
        if round.count == 1 {
            takeRun(from: round[0], upTo: limit, above: runnerUp, now: now, jobs: jobs)
        } else {
            let earlier = { (a: Int32, b: Int32) in self.lanes[Int(a)].turn < self.lanes[Int(b)].turn }
            if limit - taken.count == 1, let first = round.min(by: earlier) {
                round.removeAll(keepingCapacity: true)  // room for one: the round need not be sorted
                round.append(first)
            } else {
                round.sort(by: earlier)
            }
            for lane in round where taken.count < limit {
                taken.append(popFirst(lane))
                served(lane)
            }
        }
        swap(&round, &scratch)
    }

    /// Takes jobs from `lane` while there is room, it holds jobs and (with `runnerUp`) its
    /// standing stays above that; at least one.
    private mutating func takeRun(from lane: Int32, upTo limit: Int, above runnerUp: Int?, now: Instant, jobs: BrokerJobs) {
        repeat {
            taken.append(popFirst(lane))
        } while taken.count < limit && lanes[Int(lane)].activeIndex >= 0
            && runnerUp.map({ standing(of: lane, now: now, jobs: jobs) > $0 }) ?? true
        served(lane)
    }

    /// The lane's priority plus one per `agingStep` its first (oldest) job has waited, at most
    /// the highest priority.
    private func standing(of lane: Int32, now: Instant, jobs: BrokerJobs) -> Int {
        let priority = Int(lanes[Int(lane)].priority)
        guard priority < Int(Self.priorities.upperBound), let first = lanes[Int(lane)].slots.first else { return priority }
        let waited = now - jobs[first].queuedAt
        guard waited >= Self.agingStep else { return priority }
        return min(Int(Self.priorities.upperBound), priority + Int(waited / Self.agingStep))
    }
}
