import Foundation
import TaskMesh

/// What `taskmesh submit --count` reports.
struct Summary {
    let count: Int
    var ok = 0
    var wrong = 0
    var timedOut = 0
    var failed = 0
    var errors: [String: Int] = [:]
    var latencies: [Duration] = []
    var elapsed: Duration = .zero
    var droppedLateOrDuplicate: UInt64 = 0
    /// Jobs that had no outcome when the run was interrupted (Ctrl-C cancelled them).
    var cancelled = 0

    init(count: Int) {
        self.count = count
        latencies.reserveCapacity(count)
    }

    var done: Int { ok + wrong + timedOut + failed }
    var allSucceeded: Bool { ok == count }

    mutating func record(_ error: JobError) {
        if error.code == .timedOut || error.code == .noWorkers { timedOut += 1 } else { failed += 1 }
        errors["\(error.code)", default: 0] += 1
    }

    var jobsPerSecond: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(done) / seconds : 0
    }

    func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let sorted = latencies.sorted()
        let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
        let d = sorted[max(0, index)]
        return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    var text: String {
        var lines = ["jobs: \(count)  ok: \(ok)  failed: \(failed)  timed out: \(timedOut)" + (wrong > 0 ? "  wrong result: \(wrong)" : "")
                     + (cancelled > 0 ? "  cancelled: \(cancelled)" : "")]
        lines.append(String(format: "throughput: %.0f jobs/s  latency p50: %.3f ms  p99: %.3f ms", jobsPerSecond, percentile(0.5), percentile(0.99)))
        if !errors.isEmpty {
            lines.append("errors: " + errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        let object: [String: Any] = [
            "count": count, "ok": ok, "failed": failed, "timedOut": timedOut, "wrong": wrong,
            "jobsPerSecond": jobsPerSecond, "p50Ms": percentile(0.5), "p99Ms": percentile(0.99),
            "droppedLateOrDuplicate": droppedLateOrDuplicate, "errors": errors, "cancelled": cancelled,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// A one-line progress bar on standard error, redrawn at most ten times a second.
struct ProgressBar {
    let total: Int
    let enabled: Bool
    private var lastDraw = ContinuousClock.now

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    mutating func update(_ done: Int) {
        guard enabled, ContinuousClock.now - lastDraw >= .milliseconds(100) || done == total else { return }
        lastDraw = .now
        let width = 30
        let filled = total > 0 ? done * width / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total)".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
