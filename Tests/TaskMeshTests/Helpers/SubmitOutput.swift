import Foundation

/// Reads what a `taskmesh submit --count` process printed.
enum SubmitOutput {
    /// The jobs done so far by `--progress`'s bar on standard error (`[###...] 1234/30000`).
    static func done(_ stderr: String) -> Int {
        guard let bar = stderr.split(separator: "\r").last(where: { $0.contains("] ") }),
              let counts = bar.split(separator: " ").last?.split(separator: "/").first else { return 0 }
        return Int(counts) ?? 0
    }

    /// `jobs: 30000  ok: 29000  failed: 0  timed out: 1000` as numbers by name.
    static func counts(_ line: String) -> [String: Int] {
        var result: [String: Int] = [:]
        for part in line.components(separatedBy: "  ") {
            let pair = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, let value = Int(pair[1]) { result[pair[0]] = value }
        }
        return result
    }

    /// The summary `--json` printed (its last line that is a JSON object), or nil.
    static func json(_ stdout: String) -> [String: Any]? {
        guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}
