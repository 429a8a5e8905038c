public import Foundation
internal import Yams

extension Topology {
    /// The environment variable that names a topology file for `fromEnvironment(_:default:)`.
    public static let environmentVariable = "TASKMESH_TOPOLOGY"

    /// Reads and validates the topology file at `path` (docs/TOPOLOGY.md describes the format).
    ///
    /// Throws a `TopologyError` whose `source` is `path` when the file is missing, unreadable,
    /// not UTF-8, not valid YAML, or when any field is unknown, of the wrong type or out of range.
    /// A returned topology has passed every check the format defines.
    public static func load(path: String) throws(TopologyError) -> Topology {
        try load(path: path, namedBy: nil)
    }

    /// Validates a topology given as YAML text; `source` names it in errors.
    ///
    /// Same rules and errors as `load(path:)`, without the file.
    public static func parse(yaml: String, source: String = "<string>") throws(TopologyError) -> Topology {
        let root = try YAMLDocument.root(of: yaml, source: source)
        return try TopologyDecoder(source: source).decode(root)
    }

    /// The topology named by the `TASKMESH_TOPOLOGY` variable of `environment`, or `default` when
    /// the variable is unset or empty. A set variable that names a missing or invalid file is an
    /// error, never a silent fallback to `default`.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment,
        default: Topology = .local
    ) throws(TopologyError) -> Topology {
        guard let path = environment[environmentVariable], !path.isEmpty else { return `default` }
        return try load(path: path, namedBy: environmentVariable)
    }

    private static func load(path: String, namedBy variable: String?) throws(TopologyError) -> Topology {
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            let origin = variable.map { " (named by \($0))" } ?? ""
            throw TopologyError(source: path, field: nil, message: error.message + origin)
        }
        return try parse(yaml: text, source: path)
    }

    /// The largest topology file read: topologies are a few kilobytes; a file far larger is
    /// not one (or names the wrong path), and reading it whole would cost its size in memory.
    static let maxFileSize = 1 << 20

    private static func readTextFile(_ path: String) throws(ValueProblem) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValueProblem("no such file")
        }
        if isDirectory.boolValue {
            throw ValueProblem("is a directory, not a topology file")
        }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxFileSize {
            throw ValueProblem("is \(size) bytes; a topology file may hold at most \(maxFileSize) (1 MiB)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValueProblem("cannot read the file (check its permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ValueProblem("is not UTF-8 text")
        }
        return text
    }
}
