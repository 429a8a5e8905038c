/// Why a topology could not be read: a missing or unreadable file, invalid YAML, or a field whose
/// value is missing, unknown or out of range. Its `description` names the file and the field,
/// for example `topologies/direct.yaml: heartbeat.liveness: expected a positive integer, got "zero"`.
public struct TopologyError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The file the topology came from, as given to `Topology.load(path:)`, or the `source`
    /// passed to `Topology.parse(yaml:source:)`.
    public let source: String
    /// The dotted path of the offending field, such as `heartbeat.liveness` or
    /// `sink.results.bind`; nil when the error concerns the whole file (missing file, invalid
    /// YAML, empty document).
    public let field: String?
    /// What is wrong, phrased for the person who edits the file.
    public let message: String

    public init(source: String, field: String?, message: String) {
        self.source = source
        self.field = field
        self.message = message
    }

    /// `source: field: message`, or `source: message` when no field is involved.
    public var description: String {
        if let field { "\(source): \(field): \(message)" } else { "\(source): \(message)" }
    }
}
