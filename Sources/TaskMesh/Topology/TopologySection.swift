/// One mapping of a topology file (the top level or a section such as `heartbeat`), read field by
/// field. Every accessor returns nil for an absent or null field and throws a `TopologyError`
/// naming the field's dotted path for a value of the wrong type or out of range.
struct TopologySection {
    let source: String
    /// The dotted path of this mapping; empty for the top level.
    let path: String
    private let values: [String: ConfigValue]

    /// Reads `value` as a mapping whose keys must all be in `fields`. A nil or null `value` is an
    /// empty section. `schema` lists every section's fields, to point at a misplaced key.
    init(_ value: ConfigValue?, path: String, fields: [String], schema: [String: [String]], source: String) throws(TopologyError) {
        self.source = source
        self.path = path
        switch value {
        case nil, .null?:
            values = [:]
        case .mapping(let pairs)?:
            for pair in pairs where !fields.contains(pair.key) {
                let hint = FieldSuggestion.hint(for: pair.key, fields: fields, schema: schema, section: path)
                throw TopologyError(source: source, field: TopologySection.join(path, pair.key), message: "unknown field" + hint)
            }
            values = Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        case let other?:
            let names = fields.joined(separator: ", ")
            let place = path.isEmpty ? " at the top level" : ""
            throw TopologyError(source: source, field: path.isEmpty ? nil : path,
                                message: "expected a mapping of fields (\(names))\(place), got \(other.rendered)")
        }
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    func fieldPath(_ key: String) -> String { TopologySection.join(path, key) }

    func error(_ key: String, _ message: String) -> TopologyError {
        TopologyError(source: source, field: fieldPath(key), message: message)
    }

    /// The raw value of `key`; nil when absent or null.
    func value(_ key: String) -> ConfigValue? {
        switch values[key] {
        case nil, .null?: nil
        case let value?: value
        }
    }

    func string(_ key: String, expected: String) throws(TopologyError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else {
            throw error(key, "expected \(expected), got \(value.rendered)")
        }
        return text
    }

    /// An integer in `range`; `expected` names the range in errors ("a positive integer").
    func int(_ key: String, in range: ClosedRange<Int>, expected: String) throws(TopologyError) -> Int? {
        guard let value = value(key) else { return nil }
        guard case .int(let number, _) = value, range.contains(number) else {
            throw error(key, "expected \(expected), got \(value.rendered)")
        }
        return number
    }

    /// A duration of at least `minimum` (more than zero when `minimum` is nil and `positive`).
    func duration(_ key: String, atLeast minimum: Duration = .zero, atMost maximum: Duration? = nil,
                  positive: Bool = false) throws(TopologyError) -> Duration? {
        guard let value = value(key) else { return nil }
        let duration: Duration
        switch value {
        case .string(let text), .other(let text):
            do { duration = try ValueParsing.duration(text) } catch {
                throw self.error(key, "\(error.message), got \(value.rendered)")
            }
        case .int:
            throw error(key, "a duration needs a unit, ms, s, m or h (such as \"1s\" or \"500ms\"), got \(value.rendered)")
        case .null, .sequence, .mapping:
            throw error(key, "expected a duration such as \"1s\" or \"500ms\", got \(value.rendered)")
        }
        if positive && duration <= .zero {
            throw error(key, "expected a duration longer than zero, got \(value.rendered)")
        }
        if duration < minimum {
            throw error(key, "expected a duration of at least \(ValueParsing.format(minimum)), got \(value.rendered)")
        }
        if let maximum, duration > maximum {
            throw error(key, "expected a duration of at most \(ValueParsing.format(maximum)), got \(value.rendered)")
        }
        return duration
    }

    /// A byte size in `range`; `rangeText` says the range in errors ("from 1 byte to 256MiB").
    func size(_ key: String, in range: ClosedRange<Int>, rangeText: String) throws(TopologyError) -> Int? {
        guard let value = value(key) else { return nil }
        let bytes: Int
        switch value {
        case .int(let number, _):
            bytes = number
        case .string(let text), .other(let text):
            do { bytes = try ValueParsing.size(text) } catch {
                throw self.error(key, "\(error.message), got \(value.rendered)")
            }
        case .null, .sequence, .mapping:
            throw error(key, "expected a size such as \"16MiB\", got \(value.rendered)")
        }
        guard range.contains(bytes) else {
            throw error(key, "expected a size \(rangeText), got \(value.rendered)")
        }
        return bytes
    }

    /// `true` or `false`.
    func bool(_ key: String) throws(TopologyError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .other(let text) = value, text == "true" || text == "false" else {
            throw error(key, "expected true or false, got \(value.rendered)")
        }
        return text == "true"
    }

    /// A list of labels (`[gpu, region-eu]`): each 1 to 255 UTF-8 bytes of letters, digits,
    /// `.`, `_`, `-`, `:` or `/`, at most `Capabilities.maxLabels` of them.
    func labels(_ key: String) throws(TopologyError) -> Set<String>? {
        guard let value = value(key) else { return nil }
        guard case .sequence(let items) = value else {
            throw error(key, "expected a list of labels such as [gpu, region-eu], got \(value.rendered)")
        }
        var labels = Set<String>()
        for item in items {
            guard let text = item.scalarText else { throw error(key, "expected a label, got \(item.rendered)") }
            if let problem = LabelRules.problem(with: text) { throw error(key, problem) }
            labels.insert(text)
        }
        guard labels.count <= Capabilities.maxLabels else {
            throw error(key, "at most \(Capabilities.maxLabels) labels, got \(labels.count)")
        }
        return labels
    }

    /// An endpoint of valid shape (see `TopologyEndpoint.parse`).
    func endpoint(_ key: String) throws(TopologyError) -> TopologyEndpoint? {
        guard let text = try string(key, expected: "an endpoint such as \"tcp://127.0.0.1:5701\"") else { return nil }
        do { return try TopologyEndpoint.parse(text) } catch {
            throw self.error(key, "\(error.message), got \"\(text)\"")
        }
    }
}
