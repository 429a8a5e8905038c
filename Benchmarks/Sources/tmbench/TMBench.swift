// tmbench: the TaskMesh client of the benchmark suite (Benchmarks/runner/bench.py runs it).
//
// One run per invocation, one JSON line on standard output:
//
//   tmbench --mode local|direct|reliable [--sink tcp://...] [--broker tcp://...] --workers N --op echo|sha256 --size BYTES
//           --kind tput|lat --count N [--window W] [--warmup N] [--checkpoint N] [--watch name=pid,...]
//
// tput: submits `count` jobs keeping at most `window` in flight (a future per job, awaited in
//       submission order), and reports jobs per second from the first submit to the last result.
// lat:  one job at a time (`submit` awaits its result) and reports p50/p99/p99.9 from an
//       HdrHistogram of nanoseconds.
// Every result is checked (echo: equal to the payload; sha256: the payload's hex digest).
// RSS (VmRSS, KiB) of this process and of every watched pid is read after `checkpoint` jobs and
// at the end.
//
// In local mode the workers run in this process (`mesh.worker`); in direct mode the sink and the
// workers are `taskmesh` processes started by the runner, and `--sink` is the sink's clients
// endpoint; in reliable mode `--broker` is the broker's clients endpoint.

import Crypto
import Foundation
import Histogram
import Logging
import TaskMesh

struct Options: Sendable {
    var mode = "local"
    var sink = ""
    var broker = ""
    var workers = 1
    var concurrency: Int?
    var op = "echo"
    var size = 16
    var kind = "tput"
    var count = 10_000
    var window = 10_000
    var warmup = 1_000
    var checkpoint = 0
    var watch: [(String, Int32)] = []

    init(_ arguments: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("missing value after \(arguments[i - 1])") }
            return arguments[i]
        }
        func number() -> Int {
            let text = value()
            guard let n = Int(text), n >= 0 else { fail("not a count: \(text)") }
            return n
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--mode": mode = value()
            case "--sink": sink = value()
            case "--broker": broker = value()
            case "--workers": workers = number()
            case "--concurrency": concurrency = number()
            case "--op": op = value()
            case "--size": size = number()
            case "--kind": kind = value()
            case "--count": count = number()
            case "--window": window = max(1, number())
            case "--warmup": warmup = number()
            case "--checkpoint": checkpoint = number()
            case "--watch":
                watch = value().split(separator: ",").compactMap { item in
                    let parts = item.split(separator: "=")
                    guard parts.count == 2, let pid = Int32(parts[1]) else { return nil }
                    return (String(parts[0]), pid)
                }
            default: fail("unknown argument \(arguments[i])")
            }
            i += 1
        }
        guard ["local", "direct", "reliable"].contains(mode) else { fail("--mode is local, direct or reliable") }
        guard ["echo", "sha256"].contains(op) else { fail("--op is echo or sha256") }
        guard ["tput", "lat"].contains(kind) else { fail("--kind is tput or lat") }
        if mode == "direct" && sink.isEmpty { fail("direct mode needs --sink ENDPOINT") }
        if mode == "reliable" && broker.isEmpty { fail("reliable mode needs --broker ENDPOINT") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tmbench: \(message)\n".utf8))
    exit(2)
}

/// VmRSS of a process in KiB, from /proc/PID/status; nil when it cannot be read.
func residentKiB(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
    }
    return nil
}

func hex(_ bytes: some Sequence<UInt8>) -> [UInt8] {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return out
}

func benchHandlers() throws -> Handlers {
    var handlers = Handlers()
    try handlers.register("echo") { $0.payload }
    try handlers.register("sha256") { job in hex(SHA256.hash(data: job.payload)) }
    return handlers
}

@main
enum TMBench {
    static func main() async throws {
        let options = Options(Array(CommandLine.arguments.dropFirst()))
        // Standard output carries only the result line; the library logs warnings to stderr.
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        try await Bench(options).run()
    }
}

/// One benchmark run. Not isolated to the main actor: results resume on the global executor,
/// as they would in a server or a command-line tool built on TaskMesh.
final class Bench {
    let options: Options
    let payload: [UInt8]
    let expected: [UInt8]
    var ok = 0
    var wrong = 0
    var failures: [String: Int] = [:]
    var rss: [String: [String: Int]] = [:]

    init(_ options: Options) {
        self.options = options
        var generator = SystemRandomNumberGenerator()
        payload = (0..<options.size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        expected = options.op == "echo" ? payload : hex(SHA256.hash(data: payload))
    }

    func run() async throws {
        var topology: Topology
        switch options.mode {
        case "local":
            topology = .local
        case "direct":
            topology = .loopback(port: 1)  // only the clients endpoint matters to a client
            topology.sink?.clientsEndpoint = options.sink
        default:
            topology = .reliableLoopback(port: 1)
            topology.broker?.clientsEndpoint = options.broker
        }
        topology.client.maxPending = max(topology.client.maxPending, options.window + 1)
        topology.client.deadline = .seconds(120)

        let mesh = try await Mesh.start(topology: topology)
        if options.mode == "local" {
            for _ in 0..<options.workers { try await mesh.worker(try benchHandlers(), concurrency: options.concurrency) }
        }
        let client = try await mesh.client()
        if options.mode != "local" {
            try await client.waitForWorkers(options.workers, timeout: .seconds(30))
        }

        let clock = ContinuousClock()
        var report: [String: Any] = [:]
        if options.kind == "tput" {
            await pipelined(client, options.warmup, checkpoint: 0, record: false)
            let usage0 = Self.usage()
            let start = clock.now
            await pipelined(client, options.count, checkpoint: options.checkpoint, record: true)
            let seconds = Self.seconds(clock.now - start)
            report.merge(Self.usage(since: usage0)) { $1 }
            sampleRSS("end")
            report["seconds"] = seconds
            report["jobs_per_s"] = Double(options.count) / seconds
        } else {
            for _ in 0..<options.warmup { _ = try? await client.submit(options.op, payload) }
            var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .three)
            let usage0 = Self.usage()
            let start = clock.now
            for i in 0..<options.count {
                let t0 = clock.now
                let outcome: Result<[UInt8], JobError>
                do throws(JobError) { outcome = .success(try await client.submit(options.op, payload)) } catch { outcome = .failure(error) }
                let d = clock.now - t0
                _ = histogram.record(UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000))
                check(outcome)
                if i + 1 == options.checkpoint { sampleRSS("checkpoint") }
            }
            let seconds = Self.seconds(clock.now - start)
            report.merge(Self.usage(since: usage0)) { $1 }
            sampleRSS("end")
            report["seconds"] = seconds
            report["jobs_per_s"] = Double(options.count) / seconds
            report["p50_us"] = Double(histogram.valueAtPercentile(50)) / 1000
            report["p99_us"] = Double(histogram.valueAtPercentile(99)) / 1000
            report["p999_us"] = Double(histogram.valueAtPercentile(99.9)) / 1000
            report["max_us"] = Double(histogram.max) / 1000
        }

        let stats = client.stats
        await mesh.shutdown()
        report["kind"] = options.kind
        report["count"] = options.count
        report["ok"] = ok
        report["wrong"] = wrong
        report["failed"] = failures.values.reduce(0, +)
        report["errors"] = failures
        report["rss_kib"] = rss
        report["dropped_late_or_duplicate"] = Int(stats.droppedLateOrDuplicate)
        let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Submits `count` jobs with at most `window` in flight; the futures are awaited in order.
    func pipelined(_ client: Client, _ count: Int, checkpoint: Int, record: Bool) async {
        let window = min(options.window, max(1, count))
        var ring = [JobHandle<[UInt8]>?](repeating: nil, count: window)
        var completed = 0
        func settle(_ handle: JobHandle<[UInt8]>) async {
            let outcome: Result<[UInt8], JobError>
            do throws(JobError) { outcome = .success(try await handle.value()) } catch { outcome = .failure(error) }
            completed += 1
            if record {
                check(outcome)
                if completed == checkpoint { sampleRSS("checkpoint") }
            }
        }
        for i in 0..<count {
            let slot = i % window
            if let handle = ring[slot] { await settle(handle) }
            do throws(JobError) {
                ring[slot] = try client.enqueue(options.op, payload)
            } catch {
                ring[slot] = nil
                completed += 1
                if record { failures["\(error.code)", default: 0] += 1 }
            }
        }
        for i in 0..<window {
            if let handle = ring[(count + i) % window] { await settle(handle) }
        }
    }

    func check(_ outcome: Result<[UInt8], JobError>) {
        switch outcome {
        case .success(let result): if result == expected { ok += 1 } else { wrong += 1 }
        case .failure(let error): failures["\(error.code)", default: 0] += 1
        }
    }

    func sampleRSS(_ label: String) {
        var sample: [String: Int] = [:]
        sample["client"] = residentKiB(getpid())
        for (name, pid) in options.watch { sample[name] = residentKiB(pid) }
        rss[label] = sample
    }

    /// CPU seconds and context switches of this process so far, all threads.
    static func usage() -> (cpu: Double, switches: Int) {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        let cpu = Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
        return (cpu, u.ru_nvcsw + u.ru_nivcsw)
    }

    static func usage(since start: (cpu: Double, switches: Int)) -> [String: Any] {
        let now = usage()
        return ["cpu_s": now.cpu - start.cpu, "switches": now.switches - start.switches]
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
