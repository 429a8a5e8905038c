import DequeModule

/// The queued jobs of a `BrokerState`, grouped by how they must be routed, and which worker
/// connection can run which group (BrokerRouting.swift).
///
/// - A routing class is one (handler, required labels) pair. A worker can run a class when it
///   serves the handler and carries every label (`Capabilities.canRun`); that is worked out once
///   per class and worker: when either appears, or the worker advertises anew.
/// - A lane is one (routing class, priority, client) triple. It holds its queued jobs' slots
///   first come, first served; a requeued job goes back to the front of its lane.
///
/// A job's slot is in at most one lane, once. `take(for:upTo:now:jobs:)` decides what a worker
/// gets (BrokerRouting.swift).
struct BrokerQueues {
    struct RoutingClass {
        var handler: String
        var requires: [String]
        /// Some live (connected, not draining) worker can run it.
        var runnable = false
        /// When it last stopped being runnable, or was created unrunnable. A job no worker can
        /// run ends `unroutable` once `broker.unroutable_timeout` has passed since this or since
        /// its submission, whichever is later.
        var unroutableSince: Instant
        /// How many lanes belong to it; the class is forgotten with its last lane.
        var lanes = 0
    }

    struct Lane {
        var routingClass: Int32
        /// 1 to 9 (`JobPriority`).
        var priority: UInt8
        /// The client's record in `BrokerJobs`.
        var client: Int32
        var slots = Deque<Int32>()
        /// Its place in the round: among lanes tied on priority, the lowest turn goes next.
        var turn: Int64 = 0
        /// Its index in `active` while it holds jobs; -1 while empty.
        var activeIndex = -1
        /// False once forgotten (its index is free for another lane).
        var inUse = true
    }

    private struct ClassKey: Hashable {
        let handler: String
        let requires: [String]
    }

    private struct LaneKey: Hashable {
        let routingClass: Int32
        let priority: UInt8
        let client: Int32
    }

    /// What a priority may be: lanes clamp to it.
    static let priorities = JobPriority.lowest.value...JobPriority.highest.value

    var classes: [RoutingClass] = []
    private var classIndex: [ClassKey: Int32] = [:]
    private var freeClasses: [Int32] = []
    var lanes: [Lane] = []
    private var laneIndex: [LaneKey: Int32] = [:]
    private var freeLanes: [Int32] = []
    /// The lanes that hold jobs, in no order.
    private(set) var active: [Int32] = []
    /// Jobs queued, in all lanes.
    private(set) var count = 0
    /// The next turn at the back of the round, and the next at its front (for requeued jobs).
    private var backTurn: Int64 = 0
    private var frontTurn: Int64 = -1
    /// The lane found last: jobs come in runs of one handler, priority and client.
    private var lastLane: Int32 = -1
    /// Worker connections, numbered as `BrokerState.WorkerSlot.route` (BrokerRouting.swift).
    var routes: [Route] = []
    var freeRoutes: [Int32] = []
    /// The slots the last `take` handed out, in order.
    var taken: [Int32] = []
    /// Room for `take`'s working list, kept for its capacity.
    var scratch: [Int32] = []

    var isEmpty: Bool { count == 0 }

    // MARK: Lanes

    /// The lane for jobs of `handler` with `options` from client record `client`, made (and its
    /// routing class) when new.
    mutating func lane(handler: String, options: DispatchOptions, client: Int32, now: Instant) -> Int32 {
        let priority = min(max(options.priority, Self.priorities.lowerBound), Self.priorities.upperBound)
        if lastLane >= 0 {
            let last = Int(lastLane)
            let routing = Int(lanes[last].routingClass)
            if lanes[last].client == client && lanes[last].priority == priority && classes[routing].handler == handler
                && classes[routing].requires == options.requires {
                return lastLane
            }
        }
        let routing = routingClass(handler: handler, requires: options.requires, now: now)
        let key = LaneKey(routingClass: routing, priority: priority, client: client)
        if let found = laneIndex[key] {
            lastLane = found
            return found
        }
        let lane = lanes.place(Lane(routingClass: routing, priority: priority, client: client), reusing: &freeLanes)
        laneIndex[key] = lane
        classes[Int(routing)].lanes += 1
        lastLane = lane
        return lane
    }

    /// The routing class of `job`'s handler and required labels, if one exists (it does while
    /// the job is queued or running).
    func routingClass(of job: JobMessage) -> Int32? {
        classIndex[ClassKey(handler: job.handler, requires: job.options.requires)]
    }

    /// Queues `slot` last in `lane`; a lane that was empty joins the back of the round.
    mutating func append(_ slot: Int32, to lane: Int32) {
        lanes[Int(lane)].slots.append(slot)
        count += 1
        if lanes[Int(lane)].activeIndex < 0 { activate(lane) }
    }

    /// Queues `slot` first in `lane` and puts the lane first in the round: a requeued job is
    /// the next its lane's priority gives out.
    mutating func prepend(_ slot: Int32, to lane: Int32) {
        lanes[Int(lane)].slots.prepend(slot)
        count += 1
        if lanes[Int(lane)].activeIndex < 0 { activate(lane) }
        lanes[Int(lane)].turn = frontTurn
        frontTurn -= 1
    }

    /// Takes the first slot of a lane that holds jobs.
    mutating func popFirst(_ lane: Int32) -> Int32 {
        let slot = lanes[Int(lane)].slots.removeFirst()
        count -= 1
        if lanes[Int(lane)].slots.isEmpty { deactivate(lane) }
        return slot
    }

    /// Sends `lane` to the back of the round, after it gave out jobs.
    mutating func served(_ lane: Int32) {
        lanes[Int(lane)].turn = backTurn
        backTurn += 1
    }

    /// Takes the slots in `removed` out of `lane`, keeping the others' order.
    mutating func remove(_ removed: Set<Int32>, from lane: Int32) {
        let before = lanes[Int(lane)].slots.count
        lanes[Int(lane)].slots.removeAll { removed.contains($0) }
        count -= before - lanes[Int(lane)].slots.count
        if lanes[Int(lane)].slots.isEmpty && lanes[Int(lane)].activeIndex >= 0 { deactivate(lane) }
    }

    /// Forgets the empty lanes, and the routing classes left without lanes, so that clients and
    /// handler names that come and go leave nothing behind. Cheap to call once a tick; a lane
    /// made again later joins the back of the round, as an emptied one does.
    mutating func forgetEmptyLanes() {
        guard laneIndex.count > active.count else { return }
        for index in lanes.indices where lanes[index].inUse && lanes[index].activeIndex < 0 {
            let lane = lanes[index]
            laneIndex.removeValue(forKey: LaneKey(routingClass: lane.routingClass, priority: lane.priority, client: lane.client))
            lanes[index] = Lane(routingClass: -1, priority: 0, client: -1, inUse: false)
            freeLanes.append(Int32(index))
            let routing = Int(lane.routingClass)
            classes[routing].lanes -= 1
            if classes[routing].lanes == 0 {
                classIndex.removeValue(forKey: ClassKey(handler: classes[routing].handler, requires: classes[routing].requires))
                classes[routing] = RoutingClass(handler: "", requires: [], unroutableSince: classes[routing].unroutableSince)
                freeClasses.append(Int32(routing))
            }
        }
        lastLane = -1
    }

    /// The lanes holding jobs in the order a worker that can run them all would be offered
    /// them, before aging: higher priority first, then by turn.
    var lanesInOrder: [Int32] {
        active.sorted { (lanes[Int($0)].priority, -lanes[Int($0)].turn) > (lanes[Int($1)].priority, -lanes[Int($1)].turn) }
    }

    /// How many jobs are queued per handler.
    var queuedPerHandler: [String: Int] {
        var counts: [String: Int] = [:]
        for lane in active { counts[classes[Int(lanes[Int(lane)].routingClass)].handler, default: 0] += lanes[Int(lane)].slots.count }
        return counts
    }

    // MARK: Internals

    /// The class of (`handler`, `requires`), made when new, with which workers can run it.
    private mutating func routingClass(handler: String, requires: [String], now: Instant) -> Int32 {
        let key = ClassKey(handler: handler, requires: requires)
        if let found = classIndex[key] { return found }
        let routing = classes.place(RoutingClass(handler: handler, requires: requires, unroutableSince: now), reusing: &freeClasses)
        classIndex[key] = routing
        learn(routing)
        return routing
    }

    private mutating func activate(_ lane: Int32) {
        lanes[Int(lane)].activeIndex = active.count
        active.append(lane)
        served(lane)
    }

    private mutating func deactivate(_ lane: Int32) {
        let index = lanes[Int(lane)].activeIndex
        let moved = active.removeLast()
        if moved != lane {
            active[index] = moved
            lanes[Int(moved)].activeIndex = index
        }
        lanes[Int(lane)].activeIndex = -1
    }
}

extension Array {
    /// Puts `element` in the slot freed last (taken from `free`), or at the end when none is
    /// free; returns its index. The broker's lanes, classes and routes are numbered this way.
    mutating func place(_ element: Element, reusing free: inout [Int32]) -> Int32 {
        if let reused = free.popLast() {
            self[Int(reused)] = element
            return reused
        }
        append(element)
        return Int32(count - 1)
    }
}
