/// A YAML value reduced to what a topology file uses.
enum ConfigValue {
    case null
    /// A quoted scalar, or a plain one that YAML does not read as a number, boolean or null.
    case string(String)
    /// A plain integer scalar, with its text as written.
    case int(Int, text: String)
    /// Any other plain scalar (a float, a boolean, an integer too large for `Int`), as written.
    case other(String)
    case sequence([ConfigValue])
    /// Key and value pairs in document order.
    case mapping([(key: String, value: ConfigValue)])

    /// A short YAML-like rendering for error messages: strings quoted, numbers as written, lists
    /// as `[1, 2]`, mappings as `{a: 1}`; cut at 60 characters.
    var rendered: String {
        let full: String
        switch self {
        case .null: full = "null"
        case .string(let text): full = "\"" + text.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
        case .int(_, let text), .other(let text): full = text
        case .sequence(let items): full = "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case .mapping(let pairs): full = "{" + pairs.map { "\($0.key): \($0.value.rendered)" }.joined(separator: ", ") + "}"
        }
        return full.count > 60 ? full.prefix(57) + "..." : full
    }

    /// The text of a scalar; nil for null, sequences and mappings.
    var scalarText: String? {
        switch self {
        case .string(let text), .int(_, let text), .other(let text): text
        case .null, .sequence, .mapping: nil
        }
    }
}
