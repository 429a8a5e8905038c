import Foundation

/// An append-only file with one line per handler start, `client-id job-id attempt` in hex and
/// decimal, flushed to disk before the handler runs so it survives SIGKILL. Tests read it to count
/// executions per job; it is off unless a worker is given a path.
final class ExecutionLog: Sendable {
    private let file: FileHandle

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw JobError(.invalidJob, "cannot create the execution log \(path)")
            }
        }
        file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try file.seekToEnd()
    }

    func record(_ job: JobMessage) {
        let line = "\(Self.hex(job.clientID)) \(Self.hex(job.jobID)) \(job.attempt)\n"
        try? file.write(contentsOf: Data(line.utf8))
        try? file.synchronize()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}
