/// One section of the topology file format: its dotted path ("" for the top level) and its
/// entries, in the order errors list them.
struct TopologySectionSpec<Target>: Sendable {
    let path: String
    let entries: [TopologyField<Target>]

    init(_ path: String, _ entries: [TopologyField<Target>]) {
        self.path = path
        self.entries = entries
    }

    var names: [String] { entries.map(\.name) }

    /// The rows docs/TOPOLOGY.md must hold for this section's fields (nested sections have none).
    var documentedFields: [TopologyFieldDoc] {
        entries.filter { $0.read != nil }.map {
            TopologyFieldDoc(path: TopologySection.join(path, $0.name), type: $0.type, defaultValue: $0.defaultValue,
                             constraints: $0.constraints, meaning: $0.meaning)
        }
    }

    /// Reads `value` as this section: a mapping of known entries (nil or null is empty).
    func section(_ value: ConfigValue?, source: String) throws(TopologyError) -> TopologySection {
        try TopologySection(value, path: path, fields: names, schema: TopologySchema.names, source: source)
    }

    /// Reads every field present in `section` into `target`, in declaration order, so a field's
    /// reader may check it against those declared before it.
    func apply(_ section: TopologySection, to target: inout Target, _ context: TopologyContext) throws(TopologyError) {
        for entry in entries {
            try entry.read?(section, context, &target)
        }
    }

    /// `section(value)` then `apply` to `target`; returns the section for its nested ones.
    @discardableResult
    func read(_ value: ConfigValue?, into target: inout Target, _ context: TopologyContext) throws(TopologyError) -> TopologySection {
        let section = try section(value, source: context.source)
        try apply(section, to: &target, context)
        return section
    }
}

/// A field's row in docs/TOPOLOGY.md, as its declaration says it must read.
struct TopologyFieldDoc: Sendable, Equatable {
    let path: String
    let type: String
    let defaultValue: String
    let constraints: String
    /// How the row's meaning cell begins.
    let meaning: String
}
