/// What reading a field may need beyond its own section.
struct TopologyContext: Sendable {
    /// The file's path (or the name a string was given under), for errors and relative paths.
    let source: String
    /// The mode the file declares; read first, since it decides what the other fields allow.
    let mode: Topology.Mode

    /// `path` relative to the topology file's folder, unless it is absolute.
    func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/"), let slash = source.lastIndex(of: "/") else { return path }
        return "\(source[..<slash])/\(path)"
    }
}

/// One entry of a topology section, declared once: a field with how it is read into `Target` and
/// what its row in docs/TOPOLOGY.md says (a test holds the document to these cells), or the name
/// of a nested section, which has its own declaration.
struct TopologyField<Target>: Sendable {
    typealias Reader = @Sendable (TopologySection, TopologyContext, inout Target) throws(TopologyError) -> Void

    let name: String
    /// The row's cells: type, default and constraints exactly as written; how its meaning begins.
    let type: String
    let defaultValue: String
    let constraints: String
    let meaning: String
    /// Nil for a nested section.
    let read: Reader?

    init(_ name: String, type: String, default defaultValue: String, constraints: String = "", meaning: String,
         read: @escaping Reader) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.constraints = constraints
        self.meaning = meaning
        self.read = read
    }

    private init(section name: String) {
        self.name = name
        type = ""
        defaultValue = ""
        constraints = ""
        meaning = ""
        read = nil
    }

    /// A nested section such as `sink.results`.
    static func section(_ name: String) -> Self { Self(section: name) }
}

// MARK: Fields of the common kinds

extension TopologyField {
    /// An integer in `range`; `expected` names the range in errors ("a positive integer").
    static func integer(_ name: String, _ key: any WritableKeyPath<Target, Int> & Sendable, in range: ClosedRange<Int>,
                        expected: String, default defaultValue: String, constraints: String, meaning: String) -> Self {
        Self(name, type: "integer", default: defaultValue, constraints: constraints, meaning: meaning) { section, _, target throws(TopologyError) in
            if let value = try section.int(name, in: range, expected: expected) { target[keyPath: key] = value }
        }
    }

    /// A duration in the given bounds (longer than zero when `positive`).
    static func duration(_ name: String, _ key: any WritableKeyPath<Target, Duration> & Sendable,
                         atLeast minimum: Duration = .zero, atMost maximum: Duration? = nil, positive: Bool = false,
                         default defaultValue: String, constraints: String, meaning: String) -> Self {
        Self(name, type: "duration", default: defaultValue, constraints: constraints, meaning: meaning) { section, _, target throws(TopologyError) in
            if let value = try section.duration(name, atLeast: minimum, atMost: maximum, positive: positive) {
                target[keyPath: key] = value
            }
        }
    }

    /// `true` or `false`.
    static func flag(_ name: String, _ key: any WritableKeyPath<Target, Bool> & Sendable, default defaultValue: String,
                     meaning: String) -> Self {
        Self(name, type: "`true` / `false`", default: defaultValue, meaning: meaning) { section, _, target throws(TopologyError) in
            if let value = try section.bool(name) { target[keyPath: key] = value }
        }
    }

    /// A path to a key file, taken relative to the topology file's folder.
    static func keyFile(_ name: String, _ key: any WritableKeyPath<Target, String?> & Sendable, expected: String,
                        constraints: String, meaning: String) -> Self {
        Self(name, type: "path", default: "none", constraints: constraints, meaning: meaning) { section, context, target throws(TopologyError) in
            if let path = try section.string(name, expected: expected) { target[keyPath: key] = context.resolve(path) }
        }
    }

    /// One path or a list of them, each taken relative to the topology file's folder.
    static func keyFiles(_ name: String, _ key: any WritableKeyPath<Target, [String]> & Sendable, meaning: String) -> Self {
        Self(name, type: "path or list of paths", default: "`[]`", constraints: "key files or folders of `.pub` files",
             meaning: meaning) { section, context, target throws(TopologyError) in
            guard let value = section.value(name) else { return }
            switch value {
            case .string(let path):
                target[keyPath: key] = [context.resolve(path)]
            case .sequence(let items):
                var paths: [String] = []
                for item in items {
                    guard case .string(let path) = item else {
                        throw section.error(name, "expected a list of key file or folder paths, got \(item.rendered) in it")
                    }
                    paths.append(context.resolve(path))
                }
                target[keyPath: key] = paths
            default:
                throw section.error(name, "expected a key file or folder path, or a list of them, got \(value.rendered)")
            }
        }
    }
}
