import Foundation
import Testing
@testable import TaskMesh

/// Chaos runs: the hub, the workers and the clients each in a network namespace of their own
/// (`NetworkLab`), while a seeded plan (`FaultPlan`) cuts hosts off both ways or one way, drops a
/// fifth of their packets, slows or throttles workers' links, moves workers' wall clocks, freezes
/// hosts and kills them (then starts them again). Pairs of `taskmesh submit` clients run 10 ms sleep jobs and verified echo jobs through
/// it. After every run the invariants are checked and reported:
///
/// - every job has exactly one outcome at its client (the summaries account for each), and no
///   result is wrong (no cross-talk between the clients);
/// - reliable mode: every job ends ok (none lost), run at most `max_attempts` times; direct
///   mode: every job ends ok or timed out, run at most once;
/// - no process aborted or died but the ones the plan killed, and every role ends holding at
///   most twice what it held after the first batch, plus 64 MiB;
/// - recovery: once the last fault has healed, a fresh batch of 2,000 jobs succeeds whole.
///
/// The seeded runs go one after another, beside the soak (two meshes at a time: each lab is a
/// network of its own and its processes run at the lowest CPU priority, but more at once loaded
/// the machine enough to starve timing-sensitive tests running beside them).
/// `TASKMESH_CHAOS_SEEDS` (comma-separated) replays or extends the seeds run;
/// `TASKMESH_CHAOS_JOBS` (jobs per client, default 4,000) and `TASKMESH_CHAOS_FAULTS` (per run,
/// default 4) make a run longer: `scripts/chaos.sh` runs a soak with them.
@Suite(.serialized, .enabled(if: ChaosRun.runnable, "network namespaces are not available here: \(NetworkLab.unavailable ?? "")"))
struct ChaosProcessTests {
    static let seeds: [UInt64] = {
        let given = ProcessInfo.processInfo.environment["TASKMESH_CHAOS_SEEDS"]?.split(separator: ",").compactMap { UInt64($0) } ?? []
        return given.isEmpty ? [1, 2] : given
    }()

    /// A whole number from the environment, or `fallback`.
    static func setting(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) }.map { max(1, $0) } ?? fallback
    }

    @Test(.timeLimit(.minutes(5)), arguments: seeds)
    func reliableModeLosesNoJobUnderASeededFaultPlan(_ seed: UInt64) async throws {
        try await ChaosRun(.reliable, seed: seed).run()
    }

    @Test(.timeLimit(.minutes(5)), arguments: seeds)
    func directModeEndsEveryJobOnceUnderASeededFaultPlan(_ seed: UInt64) async throws {
        try await ChaosRun(.direct, seed: seed).run()
    }

}

/// The soak the test command runs, beside the seeded runs; skipped when seeds are given (a soak
/// of `scripts/chaos.sh` sets its own size).
@Suite(.enabled(if: ChaosRun.runnable && ProcessInfo.processInfo.environment["TASKMESH_CHAOS_SEEDS"] == nil,
                "network namespaces are not available here, or seeds were given"))
struct ChaosSoakProcessTests {
    /// 100,000 jobs from four clients through three workers and 12 faults.
    @Test(.timeLimit(.minutes(8)))
    func reliableModeLosesNoneOf100000JobsFromFourClientsUnderTwelveFaults() async throws {
        try await ChaosRun(.reliable, seed: 100, jobsPerClient: 25_000, faults: 12, sleepMilliseconds: 4,
                           workers: 3, clientPairs: 2).run()
    }
}

/// One chaos run: its lab, its processes (the current one on each host, and every one started)
/// and its plan.
final class ChaosRun: @unchecked Sendable {
    /// Whether chaos runs are tested: where namespaces can be made, and always in CI (where
    /// their absence is a failure, not a skip).
    static let runnable = NetworkLab.unavailable == nil || ProcessInfo.processInfo.environment["CI"] == "true"

    // @unchecked: used by one test task at a time.
    let mode: RunningHub.Kind
    let plan: FaultPlan
    let lab: NetworkLab
    let topologyPath: String
    let directory = temporaryPath("chaos")
    /// The worker hosts: w1, w2, ...
    let workers: [String]
    /// Pairs of clients: one runs sleep jobs, the other verified echo jobs.
    let clientPairs: Int
    let jobsPerClient: Int
    /// How long each of the sleeper client's jobs sleeps: it paces the run, so the faults strike
    /// while jobs flow.
    let sleepMilliseconds: Int
    static let maxAttempts = 5
    /// Lowest CPU priority: the run shares the machine with the rest of the suite.
    static let nice = ["/usr/bin/nice", "-n", "19"]

    /// What a slow fault adds to a worker's link to the hub, each way, and the rate a throttle
    /// fault caps it at.
    static let slowBy = 150
    static let throttleTo = 64
    /// libfaketime, which every worker runs under (`scripts/fakeclock.py`) so that a skew fault
    /// can move its wall clock through a file (read at most a second late; its monotonic clock
    /// is left alone).
    static let hasLibfaketime = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]
        .contains { FileManager.default.fileExists(atPath: "\($0)/faketime/libfaketime.so.1") }
    /// Where a worker's relay to the hub listens, in the worker's namespace.
    static let relayEndpoint = "127.0.0.1:6000"

    private var hub: RunningHub?
    /// Each worker's relay to the hub (`scripts/slowlink.py`): no delay until a slow fault.
    private var relays: [String: ChildProcess] = [:]
    private var current: [String: ChildProcess] = [:]
    private var started: [ChildProcess] = []
    private var killed: Set<ObjectIdentifier> = []

    init(_ mode: RunningHub.Kind, seed: UInt64, jobsPerClient: Int = ChaosProcessTests.setting("TASKMESH_CHAOS_JOBS", 4000),
         faults: Int = ChaosProcessTests.setting("TASKMESH_CHAOS_FAULTS", 4), sleepMilliseconds: Int = 10,
         workers: Int = 2, clientPairs: Int = 1) throws {
        if let reason = NetworkLab.unavailable { throw NetworkLabUnavailable(reason: reason) }
        guard Self.hasLibfaketime else {
            throw NetworkLabUnavailable(reason: "libfaketime is not installed (apt-get install faketime, or scripts/setup.sh)")
        }
        self.mode = mode
        self.jobsPerClient = jobsPerClient
        self.sleepMilliseconds = sleepMilliseconds
        self.workers = (1...workers).map { "w\($0)" }
        self.clientPairs = clientPairs
        lab = try NetworkLab(hosts: ["hub"] + self.workers + ["client"])
        plan = FaultPlan(seed: seed &* 2 &+ (mode == .direct ? 1 : 0), count: faults, hosts: ["hub"] + self.workers + ["client"],
                         killable: Set(["hub"] + self.workers), slowable: Set(self.workers), slowBy: Self.slowBy,
                         throttleTo: Self.throttleTo, skewable: Set(self.workers), jobs: jobsPerClient)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        topologyPath = try temporaryTopologyFile("chaos-\(mode)", Self.topology(mode, hub: lab.address(of: "hub")))
    }

    struct NetworkLabUnavailable: Error, CustomStringConvertible {
        let reason: String
        var description: String { "a chaos run needs network namespaces: \(reason)" }
    }

    static func topology(_ mode: RunningHub.Kind, hub: String) -> String {
        let roles = mode == .direct
            ? "mode: direct\nsink:\n  results: { bind: \"tcp://\(hub):5801\" }\n  clients: { bind: \"tcp://\(hub):5802\" }\nclient:\n  deadline: 20s\n"
            : "mode: reliable\nbroker:\n  clients: { bind: \"tcp://\(hub):5801\" }\n  workers: { bind: \"tcp://\(hub):5802\" }\n"
                + "  max_attempts: \(maxAttempts)\n  lease: 10s\nclient:\n  deadline: 60s\n"
        return "insecure: true  # plaintext inside the lab's own namespaces\n" + roles + "  max_pending: 100000\nworker:\n  concurrency: 4\n  drain_timeout: 3s\nheartbeat:\n  interval: 500ms\n  liveness: 4\n"
    }

    func executionLog(_ host: String) -> String { "\(directory)/\(host).executions" }
    /// The offset libfaketime gives the host's wall clock ("+0", "+90s", "-90s"), and the name
    /// of the semaphore and shared memory it uses (removed from /dev/shm at the end).
    func clockOffsetFile(_ host: String) -> String { "\(directory)/\(host).faketime" }
    func sharedClockName(_ host: String) -> String { "taskmesh_chaos_\(getpid())_\(ObjectIdentifier(self).hashValue & 0xffffff)_\(host)" }

    private func startHub() async throws {
        let hub = try await RunningHub.start(mode, topologyPath: topologyPath, name: "hub",
                                             launcher: lab.launcher(on: "hub", then: Self.nice))
        self.hub = hub
        record("hub", hub.process)
    }

    /// Starts the worker on `host`, connected to the hub through its relay (started the first
    /// time; it outlives the worker's restarts).
    private func startWorker(_ host: String) async throws {
        let hub = try #require(hub)
        if relays[host] == nil {
            let launcher = lab.launcher(on: host)
            let upstream = hub.workers.replacingOccurrences(of: "tcp://", with: "")
            let relay = try ChildProcess("\(host)-relay", executable: launcher[0], Array(launcher.dropFirst()) + [
                "python3", RepositoryFiles.root.appendingPathComponent("scripts/slowlink.py").path,
                "--listen", Self.relayEndpoint, "--to", upstream, "--slow-ms", "\(Self.slowBy)", "--throttle-kbps", "\(Self.throttleTo)",
            ])
            _ = try await relay.waitForLine(startingWith: "ready")
            relays[host] = relay
        }
        var arguments = ["--handlers", "echo,sleep", "--execution-log", executionLog(host)]
        if mode == .direct { arguments += ["--bind", "tcp://\(lab.address(of: host)):5803"] }
        let fakeClock = ["python3", RepositoryFiles.root.appendingPathComponent("scripts/fakeclock.py").path,
                         "--offset-file", clockOffsetFile(host), "--shared", sharedClockName(host), "--"]
        let (process, _) = try await hub.launchWorker(host, arguments, launcher: lab.launcher(on: host, then: Self.nice + fakeClock),
                                                      via: "tcp://\(Self.relayEndpoint)")
        record(host, process)
    }

    private func record(_ host: String, _ process: ChildProcess) {
        current[host] = process
        started.append(process)
    }

    /// A `taskmesh submit --count` on the client host, with a JSON summary and a progress bar.
    private func submit(_ name: String, _ arguments: [String]) throws -> ChildProcess {
        let hub = try #require(hub)
        let launcher = lab.launcher(on: "client", then: Self.nice)
        let process = try ChildProcess(name, executable: launcher[0], Array(launcher.dropFirst()) + [
            BuiltProducts.taskmesh, "submit", "-t", topologyPath, mode == .direct ? "--sink" : "--broker", hub.clients,
            "--workers", "\(workers.count)", "--wait", "20s", "--json", "--progress",
        ] + arguments)
        started.append(process)
        return process
    }

    func run() async throws {
        try await startHub()
        for host in workers { try await startWorker(host) }
        let baseline = try await batch("baseline")
        #expect(baseline.status == 0, "before any fault: \(baseline.output)")
        let residentBefore = current.mapValues { (pid: $0.pid, kib: Self.residentKiB($0.pid)) }
        var clients: [ChildProcess] = []
        for pair in 1...clientPairs {
            clients.append(try submit("sleeper\(pair)", ["sleep", "\(sleepMilliseconds)", "--count", "\(jobsPerClient)", "--window", "64"]))
            clients.append(try submit("echoer\(pair)", ["echo", "--size", "256", "--count", "\(jobsPerClient)", "--window", "64", "--verify"]))
        }
        let sleeper = clients[0]

        var timeline: [String] = []
        let clock = ContinuousClock()
        let began = clock.now
        for fault in plan.faults {
            try await eventually("\(fault.atDone) jobs done before \(fault)", timeout: .seconds(120)) {
                SubmitOutput.done(sleeper.stderr) >= fault.atDone || !sleeper.isRunning
            }
            guard sleeper.isRunning else {
                timeline.append("not struck (the run had ended): \(fault)")
                continue
            }
            timeline.append("at \((clock.now - began).wholeMilliseconds) ms: \(fault)")
            try await strike(fault, clients: &clients)
        }
        let healed = clock.now

        for client in clients {
            try await client.waitForExit(timeout: .seconds(180))
            #expect(client.exited, "\(client.name) died of signal \(client.terminationStatus)")
        }
        var outcomes: [String: Int] = [:]
        for client in clients {
            let summary = try #require(SubmitOutput.json(client.stdout), "\(client.name) printed no summary: \(client.stdout) \(client.stderr.suffix(1500))")
            let count = summary["count"] as? Int ?? -1, ok = summary["ok"] as? Int ?? -1
            let failed = summary["failed"] as? Int ?? -1, timedOut = summary["timedOut"] as? Int ?? -1, wrong = summary["wrong"] as? Int ?? -1
            #expect(count == jobsPerClient && ok + failed + timedOut + wrong == count, "\(client.name): every job one outcome: \(summary)")
            #expect(wrong == 0, "\(client.name): results that are not their job's: \(summary)")
            switch mode {
            case .reliable: #expect(ok == count, "\(client.name): reliable mode loses no job: \(summary)")
            case .direct: #expect(failed == 0, "\(client.name): jobs end ok or timed out: \(summary)")
            }
            outcomes["ok", default: 0] += max(0, ok)
            outcomes["timed out", default: 0] += max(0, timedOut)
            outcomes["failed", default: 0] += max(0, failed)
        }

        let executions = executionsPerJob()
        let most = executions.values.max() ?? 0
        #expect(most <= (mode == .reliable ? Self.maxAttempts : 1), "a job ran \(most) times")

        let ended = clock.now
        // Recovery: a fresh batch, once every fault has healed.
        let recovery = try await batch("recovery")
        #expect(recovery.status == 0, "after the faults healed: \(recovery.output)")

        // Memory: every role ends within a bound (none grows without one through the faults): at
        // most twice what it held after the first batch, and 64 MiB more, and under 1 GiB.
        var rss: [String: Int] = [:]
        for (host, process) in current { rss[host] = Self.residentKiB(process.pid) }
        for (host, kib) in rss {
            #expect(kib < 1 << 20, "\(host) holds \(kib) KiB at the end")
            if let before = residentBefore[host], before.pid == current[host]?.pid {
                #expect(kib <= 2 * before.kib + 64 << 10, "\(host) grew from \(before.kib) KiB to \(kib) KiB through the faults")
            }
        }

        for process in started where !killed.contains(ObjectIdentifier(process)) {
            #expect(!process.stderr.contains("Assertion failed"), "\(process.name) aborted: \(process.stderr.suffix(2000))")
            if current.values.contains(where: { $0 === process }) {
                #expect(process.isRunning, "\(process.name) died: \(process.stderr.suffix(2000))")
            }
        }
        print("""
            chaos \(mode) \(plan)
              \(timeline.joined(separator: "\n  "))
              outcomes \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); executions: \(executions.count) jobs, at most \(most) each, \
            \(executions.values.filter { $0 > 1 }.count) more than once
              the run ended \((ended - healed).wholeMilliseconds) ms after the last heal; 2,000 fresh jobs: \
            \(recovery.status == 0 ? "all ok" : "FAILED") at \(recovery.jobsPerSecond) jobs/s, before the faults \(baseline.jobsPerSecond)
              resident after the first batch and at the end (MiB): \(rss.sorted { $0.key < $1.key }.map { host, kib in
                "\(host) \(residentBefore[host].map { "\($0.kib / 1024)" } ?? "?") → \(kib / 1024)" }.joined(separator: ", "))
            """)
        try await stopAll()
    }

    /// 2,000 verified echo jobs with a 10 s deadline from a fresh client: its exit status, its
    /// rate, and what it printed.
    private func batch(_ name: String) async throws -> (status: Int32, jobsPerSecond: Int, output: String) {
        let process = try submit(name, ["echo", "--size", "256", "--count", "2000", "--window", "256", "--deadline", "10s", "--verify"])
        let status = try await process.waitForExit(timeout: .seconds(60))
        let rate = Int(SubmitOutput.json(process.stdout)?["jobsPerSecond"] as? Double ?? 0)
        return (status, rate, process.stdout + process.stderr.suffix(1500))
    }

    /// Applies one fault to its target, waits it out and heals it.
    private func strike(_ fault: FaultPlan.Fault, clients: inout [ChildProcess]) async throws {
        let targets = fault.target == "client" ? clients : [try #require(current[fault.target])]
        switch fault.kind {
        case .cut(let direction):
            try lab.cut(fault.target, direction)
            try await Task.sleep(for: fault.lasts)
            try lab.heal(fault.target)
        case .lose(let percent):
            try lab.lose(fault.target, percent: percent)
            try await Task.sleep(for: fault.lasts)
            try lab.heal(fault.target)
        case .freeze:
            for target in targets { target.signal(SIGSTOP) }
            try await Task.sleep(for: fault.lasts)
            for target in targets { target.signal(SIGCONT) }
        case .slow(let milliseconds):
            let relay = try #require(relays[fault.target])
            try await switchRelay(relay, SIGUSR1, until: "delay \(milliseconds) ms")
            try await Task.sleep(for: fault.lasts)
            try await switchRelay(relay, SIGUSR2, until: "delay 0 ms")
        case .throttle(let kbps):
            let relay = try #require(relays[fault.target])
            try await switchRelay(relay, SIGHUP, until: "rate \(kbps) kbps")
            try await Task.sleep(for: fault.lasts)
            try await switchRelay(relay, SIGUSR2, until: "rate 0 kbps")
        case .skew(let seconds):
            try "\(seconds > 0 ? "+" : "")\(seconds)s\n".write(toFile: clockOffsetFile(fault.target), atomically: true, encoding: .utf8)
            try await Task.sleep(for: fault.lasts)
            try "+0\n".write(toFile: clockOffsetFile(fault.target), atomically: true, encoding: .utf8)
        case .kill:
            let target = try #require(current[fault.target])
            killed.insert(ObjectIdentifier(target))
            target.signal(SIGKILL)
            try await target.waitForExit(timeout: .seconds(10))
            try await Task.sleep(for: fault.lasts)
            if fault.target == "hub" { try await startHub() } else { try await startWorker(fault.target) }
        }
    }

    /// Signals the relay to switch its delay or rate and waits until it says `said`.
    private func switchRelay(_ relay: ChildProcess, _ signal: Int32, until said: String) async throws {
        let before = relay.stdout.components(separatedBy: said).count
        relay.signal(signal)
        try await eventually("\(relay.name) says \(said)", timeout: .seconds(10)) { relay.stdout.components(separatedBy: said).count > before }
    }

    /// The process's resident memory in KiB (`VmRSS`), or 0 when it cannot be read.
    static func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Handler starts per job (client and job id), over every worker's execution log.
    private func executionsPerJob() -> [String: Int] {
        var executions: [String: Int] = [:]
        for host in workers {
            let text = (try? String(contentsOfFile: executionLog(host), encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count >= 3 { executions["\(fields[0]) \(fields[1])", default: 0] += 1 }
            }
        }
        return executions
    }

    private func stopAll() async throws {
        for process in current.values where process.isRunning { process.signal(SIGINT) }
        for process in current.values { try await process.waitForExit(timeout: .seconds(20)) }
        for relay in relays.values { relay.signal(SIGTERM) }
        for relay in relays.values { try await relay.waitForExit(timeout: .seconds(10)) }
        for host in workers {
            try? FileManager.default.removeItem(atPath: "/dev/shm/sem.\(sharedClockName(host))_sem")
            try? FileManager.default.removeItem(atPath: "/dev/shm/\(sharedClockName(host))_shm")
        }
    }
}
