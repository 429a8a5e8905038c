import Foundation
import Testing
@testable import TaskMesh

/// A Jepsen-style history of one test run: what the client submitted and what became of each
/// job, plus what every worker executed (read from their execution logs). `check` classifies it
/// the way Jepsen's total-queue checker does.
struct FaultHistory {
    struct Report: CustomStringConvertible {
        /// Submitted jobs without an outcome (must be empty: every job ends).
        var lost: [String] = []
        /// Outcomes for a job id that was never submitted by this client.
        var unexpected: [String] = []
        /// `ok` results that do not match their input.
        var wrong: [String] = []
        /// Executions per job id (hex), over every worker.
        var executions: [String: Int] = [:]
        /// Executions of job ids this client never submitted.
        var foreignExecutions = 0
        var outcomes: [String: Int] = [:]

        var description: String {
            "lost \(lost.count), unexpected \(unexpected.count), wrong \(wrong.count), outcomes \(outcomes), "
                + "max executions \(executions.values.max() ?? 0), re-executed \(executions.values.filter { $0 > 1 }.count)"
        }
    }

    let clientHex: String
    private(set) var submitted: [String: [UInt8]] = [:]
    private(set) var ended: [String: Result<[UInt8], JobError>] = [:]

    init(client: Client) {
        clientHex = client.id
    }

    mutating func submit(_ id: JobID, payload: [UInt8]) {
        submitted[ExecutionLog.hex(id.bytes)] = payload
    }

    mutating func end(_ id: JobID, _ outcome: Result<[UInt8], JobError>) {
        let key = ExecutionLog.hex(id.bytes)
        #expect(ended[key] == nil, "job \(key) ended twice")
        ended[key] = outcome
    }

    /// Submits every payload through `client` and records each outcome.
    static func run(_ client: Client, handler: String, payloads: [[UInt8]], deadline: Duration) async throws -> FaultHistory {
        var history = FaultHistory(client: client)
        var handles: [JobHandle<[UInt8]>] = []
        for payload in payloads {
            let handle = try client.enqueue(handler, payload, options: JobOptions(deadline: deadline))
            history.submit(handle.id, payload: payload)
            handles.append(handle)
        }
        for handle in handles {
            do { history.end(handle.id, .success(try await handle.value())) } catch { history.end(handle.id, .failure(error)) }
        }
        return history
    }

    /// Classifies the history against the workers' execution logs. `expected` gives the correct
    /// result for an input.
    func check(executionLogs: [String], expected: ([UInt8]) -> [UInt8]) -> Report {
        var report = Report()
        for (id, payload) in submitted {
            guard let outcome = ended[id] else {
                report.lost.append(id)
                continue
            }
            switch outcome {
            case .success(let result):
                report.outcomes["ok", default: 0] += 1
                if result != expected(payload) { report.wrong.append(id) }
            case .failure(let error):
                report.outcomes["\(error.code)", default: 0] += 1
            }
        }
        report.unexpected = ended.keys.filter { submitted[$0] == nil }
        for path in executionLogs {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count >= 3 else { continue }
                guard fields[0] == clientHex else {
                    report.foreignExecutions += 1
                    continue
                }
                report.executions[String(fields[1]), default: 0] += 1
            }
        }
        return report
    }
}

func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
}

/// Writes `yaml` to a fresh temporary `.yaml` file named after `name`; returns its path.
func temporaryTopologyFile(_ name: String, _ yaml: String) throws -> String {
    let path = temporaryPath(name) + ".yaml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
