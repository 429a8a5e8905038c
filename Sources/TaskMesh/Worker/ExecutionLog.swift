import Foundation

/// An append-only file with one line per handler start, `client-id job-id attempt started-ms`
/// (ids in hex, the attempt in decimal, the start in milliseconds since the Unix epoch by this
/// host's clock), flushed to disk before the handler runs so it survives SIGKILL. Tests read it
/// to count executions per job and to time their starts; it is off unless a worker is given a
/// path (`taskmesh worker --execution-log`).
final class ExecutionLog: JobStartObserver {
    private let file: FileHandle

    /// Throws `ExecutionLogError` when the file cannot be created or opened for appending.
    init(path: String) throws(ExecutionLogError) {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ExecutionLogError(path: path, reason: "cannot create it")
            }
        }
        do {
            file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try file.seekToEnd()
        } catch {
            throw ExecutionLogError(path: path, reason: "cannot open it for appending: \(error)")
        }
    }

    func jobStarting(_ job: JobMessage) {
        let line = "\(Self.hex(job.clientID)) \(Self.hex(job.jobID)) \(job.attempt) \(wallClockMilliseconds())\n"
        try? file.write(contentsOf: Data(line.utf8))
        try? file.synchronize()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

/// Why a worker's execution log could not be opened.
public struct ExecutionLogError: Error, Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "execution log \(path): \(reason)" }
}
