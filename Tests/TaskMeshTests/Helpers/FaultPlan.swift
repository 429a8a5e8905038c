@testable import TaskMesh

/// A seeded schedule of faults for a chaos run: each fault strikes one host once the watched
/// client has `atDone` outcomes, lasts `lasts`, and heals before the next one strikes. The same
/// seed gives the same plan, so a failing run can be replayed (`TASKMESH_CHAOS_SEEDS`).
struct FaultPlan: CustomStringConvertible, Sendable {
    enum Kind: Equatable, Sendable, CustomStringConvertible {
        /// Packets dropped (iptables in the host's namespace).
        case cut(NetworkLab.Direction)
        /// A share of packets dropped, in percent.
        case lose(Int)
        /// SIGSTOP, then SIGCONT.
        case freeze
        /// The host's link to the hub slowed by this many milliseconds each way (its relay).
        case slow(Int)
        /// The host's link to the hub capped at this many kilobits a second each way (its relay).
        case throttle(Int)
        /// The host's wall clock moved by this many seconds (its monotonic clock runs on).
        case skew(Int)
        /// SIGKILL, then the same command started again.
        case kill

        var description: String {
            switch self {
            case .cut(let direction): "cut \(direction.rawValue)"
            case .lose(let percent): "lose \(percent)%"
            case .freeze: "freeze"
            case .slow(let milliseconds): "slow by \(milliseconds) ms each way"
            case .throttle(let kbps): "throttle to \(kbps) kbps each way"
            case .skew(let seconds): "wall clock \(seconds > 0 ? "+" : "")\(seconds) s"
            case .kill: "kill -9"
            }
        }
    }

    struct Fault: Sendable, CustomStringConvertible {
        let atDone: Int
        let kind: Kind
        let target: String
        let lasts: Duration
        var description: String { "\(kind) \(target) for \(lasts.wholeMilliseconds) ms at \(atDone) done" }
    }

    let seed: UInt64
    let faults: [Fault]

    /// `count` faults over `hosts`, striking between 5% and 60% of `jobs` outcomes, each lasting
    /// 1 to 3 s. `killable` hosts may be killed; `slowable` ones (behind a relay) slowed by
    /// `slowBy` ms each way or throttled to `throttleTo` kbps; `skewable` ones (under libfaketime)
    /// have their wall clock moved 90 s either way; every host may be cut, made lossy or frozen.
    init(seed: UInt64, count: Int, hosts: [String], killable: Set<String>, slowable: Set<String> = [], slowBy: Int = 150,
         throttleTo: Int = 64, skewable: Set<String> = [], jobs: Int) {
        var random = SplitMix64(seed: seed)
        var thresholds = (0..<count).map { _ in jobs / 20 + random.below(jobs * 11 / 20) }
        thresholds.sort()
        faults = thresholds.map { atDone in
            let target = hosts[random.below(hosts.count)]
            var kinds: [Kind] = [.cut(.both), .cut(.inbound), .cut(.outbound), .lose(20), .freeze]
            if killable.contains(target) { kinds.append(.kill) }
            if slowable.contains(target) { kinds += [.slow(slowBy), .throttle(throttleTo)] }
            if skewable.contains(target) { kinds.append(.skew(random.below(2) == 0 ? -90 : 90)) }
            return Fault(atDone: atDone, kind: kinds[random.below(kinds.count)], target: target,
                         lasts: .milliseconds(1000 + random.below(2001)))
        }
        self.seed = seed
    }

    var description: String { "seed \(seed): " + faults.map(\.description).joined(separator: "; ") }
}
