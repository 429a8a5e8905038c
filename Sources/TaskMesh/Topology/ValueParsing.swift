/// Why a single value could not be read, phrased for a person. The loader adds the source and
/// the field path to turn it into a `TopologyError`.
struct ValueProblem: Error, Equatable {
    let message: String

    init(_ message: String) {
        self.message = message
    }
}

/// Parsers for the value syntaxes of topology files: durations, byte sizes and endpoints.
enum ValueParsing {
    /// The duration units a topology file accepts, with their length in nanoseconds.
    static let durationUnits: [(name: String, nanoseconds: Int64)] = [
        ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]

    /// The size units a topology file accepts (matched without regard to case), in bytes.
    static let sizeUnits: [(name: String, bytes: Int)] = [
        ("B", 1),
        ("KB", 1_000), ("KiB", 1 << 10),
        ("MB", 1_000_000), ("MiB", 1 << 20),
        ("GB", 1_000_000_000), ("GiB", 1 << 30),
    ]

    /// Reads a duration written as a non-negative number and a unit: `500ms`, `1s`, `1.5s`, `2m`,
    /// `1h`. A space between number and unit is allowed. A bare number is refused: the unit is
    /// required so that `1` cannot silently mean a second to one reader and a millisecond to
    /// another.
    static func duration(_ text: String) throws(ValueProblem) -> Duration {
        let (number, unit) = splitNumberAndUnit(text)
        if number.isEmpty {
            throw ValueProblem("expected a duration such as \"500ms\", \"1s\", \"1.5s\" or \"2m\"")
        }
        if unit.isEmpty {
            throw ValueProblem("a duration needs a unit, ms, s, m or h (such as \"1s\" or \"500ms\")")
        }
        guard let scale = durationUnits.first(where: { $0.name == unit })?.nanoseconds else {
            throw ValueProblem("unknown duration unit \"\(unit)\" (use ms, s, m or h)")
        }
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let wholeText = parts[0]
        let fractionText = parts.count > 1 ? parts[1] : ""
        guard !wholeText.isEmpty, wholeText.allSatisfy(\.isASCIIDigit),
              parts.count == 1 || (!fractionText.isEmpty && fractionText.allSatisfy(\.isASCIIDigit)) else {
            throw ValueProblem("expected a duration such as \"500ms\", \"1s\", \"1.5s\" or \"2m\"")
        }
        let tooLong = ValueProblem("duration is too long")
        guard let whole = Int64(wholeText) else { throw tooLong }
        let (wholeNanos, overflow) = whole.multipliedReportingOverflow(by: scale)
        if overflow { throw tooLong }
        let fractionNanos = try fractionInNanoseconds(fractionText, unit: scale)
        let (total, sumOverflow) = wholeNanos.addingReportingOverflow(fractionNanos)
        if sumOverflow { throw tooLong }
        return .nanoseconds(total)
    }

    /// `0.` + `digits` of a unit `scale` nanoseconds long, as whole nanoseconds.
    private static func fractionInNanoseconds(_ digits: Substring, unit scale: Int64) throws(ValueProblem) -> Int64 {
        guard !digits.isEmpty else { return 0 }
        guard digits.count <= 9, let fraction = Int64(digits) else {
            throw ValueProblem("a duration has at most 9 decimal places")
        }
        var divisor: Int64 = 1
        for _ in 0..<digits.count { divisor *= 10 }
        // fraction < divisor <= 10^9 and scale <= 3.6 * 10^12, so the product fits when
        // divisor divides scale first; otherwise scale is small (ms) and the product is < 10^15.
        let nanos: Int64
        if scale % divisor == 0 {
            nanos = fraction * (scale / divisor)
        } else {
            let product = fraction * scale
            guard product % divisor == 0 else {
                throw ValueProblem("a duration must be a whole number of nanoseconds")
            }
            nanos = product / divisor
        }
        return nanos
    }

    /// Reads a byte size: a plain non-negative integer (bytes), or an integer followed by one of
    /// B, KB, KiB, MB, MiB, GB, GiB (KB = 1000 bytes, KiB = 1024 bytes; case does not matter).
    static func size(_ text: String) throws(ValueProblem) -> Int {
        let (number, unit) = splitNumberAndUnit(text)
        guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit) else {
            if number.contains(".") {
                throw ValueProblem("a size must be a whole number of bytes or units, such as \"1536KiB\" rather than \"1.5MiB\"")
            }
            throw ValueProblem("expected a size such as \"16MiB\", \"64KiB\" or \"1024\"")
        }
        var multiplier = 1
        if !unit.isEmpty {
            guard let found = sizeUnits.first(where: { $0.name.lowercased() == unit.lowercased() }) else {
                throw ValueProblem("unknown size unit \"\(unit)\" (use B, KB, KiB, MB, MiB, GB or GiB)")
            }
            multiplier = found.bytes
        }
        guard let count = Int(number) else { throw ValueProblem("size is too large") }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: multiplier)
        if overflow { throw ValueProblem("size is too large") }
        return bytes
    }

    /// Splits `"1.5 s"` into `("1.5", "s")`: the leading digits and dots, then the rest after
    /// optional spaces. Leading and trailing spaces are ignored.
    static func splitNumberAndUnit(_ text: String) -> (number: Substring, unit: Substring) {
        let trimmed = text.trimmingSpaces()
        let number = trimmed.prefix(while: { $0.isASCIIDigit || $0 == "." })
        let unit = trimmed[number.endIndex...].drop(while: { $0 == " " })
        return (number, unit)
    }

    /// Writes a duration the way a topology file would, in the largest unit that divides it:
    /// `1s`, `1500ms`, `2m`, `0ms`.
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let (secondsInNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, seconds >= 0, attoseconds >= 0 else { return "\(duration)" }
        let nanos = secondsInNanos + attoseconds / 1_000_000_000
        for unit in durationUnits.reversed() where nanos != 0 && nanos % unit.nanoseconds == 0 {
            return "\(nanos / unit.nanoseconds)\(unit.name)"
        }
        if nanos % 1_000_000 == 0 { return "\(nanos / 1_000_000)ms" }
        return "\(Double(nanos) / 1e9)s"
    }
}

extension Character {
    /// 0 to 9, and nothing else that Unicode counts as a digit.
    fileprivate var isASCIIDigit: Bool { asciiValue.map { (48...57).contains($0) } ?? false }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line breaks.
    fileprivate func trimmingSpaces() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0.isNewline }
        let start = firstIndex(where: { !isSpace($0) }) ?? endIndex
        let end = lastIndex(where: { !isSpace($0) }).map { index(after: $0) } ?? start
        return self[start..<end]
    }
}

/// A ZeroMQ endpoint as written in a topology file, split into its parts and checked for shape.
/// Whether it can actually be bound or reached is known only when a socket tries.
struct TopologyEndpoint: Equatable {
    enum Transport: String, CaseIterable {
        case tcp, ipc, inproc
    }

    let transport: Transport
    /// Everything after `scheme://`.
    let address: String
    /// For tcp: the host as written (`*`, `127.0.0.1`, `[::1]`, `sink.example`).
    let host: String?
    /// For tcp: the port as written (`5701`, `0` or `*`).
    let port: String?

    /// The longest ipc path the platform's socket address holds.
    #if os(Linux)
    static let maximumIPCPathLength = 107
    #else
    static let maximumIPCPathLength = 103
    #endif

    var text: String { "\(transport.rawValue)://\(address)" }

    /// A tcp host that means "every interface": fine to bind, impossible to connect to.
    var hasWildcardHost: Bool {
        guard let host else { return false }
        return host == "*" || host == "0.0.0.0" || host == "[::]"
    }

    /// False for tcp port 0 or `*`, which let the system pick a free port at bind time.
    var hasFixedPort: Bool {
        guard let port else { return true }
        return port != "*" && Int(port) != 0
    }

    /// The endpoint a peer on this machine connects to for this bind endpoint: a wildcard host
    /// becomes loopback (`127.0.0.1`, or `[::1]` for `[::]`); anything else is unchanged.
    var connectable: TopologyEndpoint {
        guard hasWildcardHost, let port else { return self }
        let loopback = host == "[::]" ? "[::1]" : "127.0.0.1"
        return TopologyEndpoint(transport: .tcp, address: "\(loopback):\(port)", host: loopback, port: port)
    }

    /// Checks the shape of `text`: a scheme of tcp://, ipc:// or inproc://; for tcp a host and a
    /// port from 0 to 65535 or `*` (IPv6 hosts in brackets); for ipc and inproc a non-empty name.
    static func parse(_ text: String) throws(ValueProblem) -> TopologyEndpoint {
        guard let separator = text.firstRange(of: "://"),
              let transport = Transport(rawValue: String(text[..<separator.lowerBound])) else {
            throw ValueProblem("an endpoint starts with tcp://, ipc:// or inproc://")
        }
        let address = String(text[separator.upperBound...])
        if address.contains(where: { $0 == " " || $0 == "\t" || $0.isNewline }) {
            throw ValueProblem("an endpoint cannot contain spaces")
        }
        switch transport {
        case .inproc:
            if address.isEmpty { throw ValueProblem("an inproc endpoint needs a name after inproc://") }
            return TopologyEndpoint(transport: .inproc, address: address, host: nil, port: nil)
        case .ipc:
            if address.isEmpty { throw ValueProblem("an ipc endpoint needs a path after ipc://") }
            if address.utf8.count > maximumIPCPathLength {
                throw ValueProblem("an ipc path can be at most \(maximumIPCPathLength) bytes long")
            }
            return TopologyEndpoint(transport: .ipc, address: address, host: nil, port: nil)
        case .tcp:
            let (host, port) = try splitHostAndPort(address)
            return TopologyEndpoint(transport: .tcp, address: address, host: host, port: port)
        }
    }

    private static func splitHostAndPort(_ address: String) throws(ValueProblem) -> (String, String) {
        let shape = ValueProblem("a tcp endpoint needs a host and a port, such as tcp://127.0.0.1:5701 or tcp://*:5701")
        guard let colon = address.lastIndex(of: ":") else { throw shape }
        let host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        if host.isEmpty || port.isEmpty { throw shape }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else {
                throw ValueProblem("an IPv6 host is written in brackets, such as tcp://[::1]:5701")
            }
        } else if host.contains(":") {
            throw ValueProblem("an IPv6 host is written in brackets, such as tcp://[::1]:5701")
        }
        if host.contains(where: { "/?#@;".contains($0) }) {
            throw ValueProblem("\"\(host)\" is not a host name or address")
        }
        if port != "*" {
            guard port.allSatisfy(\.isASCIIDigit), let number = Int(port), (0...65_535).contains(number) else {
                throw ValueProblem("a tcp port is a number from 0 to 65535, or * for a free port")
            }
        }
        return (host, port)
    }
}

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

/// Finds the field a person most likely meant by an unknown key.
enum FieldSuggestion {
    /// ` (did you mean "interval"?)` for a close match among `fields`, ` (it belongs in
    /// "worker")` for a key that is a field of other sections, or the empty string.
    static func hint(for key: String, fields: [String], schema: [String: [String]], section: String) -> String {
        if let close = closest(to: key, among: fields) {
            return " (did you mean \"\(close)\"?)"
        }
        let owners = schema.filter { $0.key != section && $0.value.contains(key) }.map(\.key).sorted()
        let names = owners.map { $0.isEmpty ? "the top level" : "\"\($0)\"" }
        switch names.count {
        case 0: return ""
        case 1: return " (it belongs in \(names[0]))"
        default: return " (it belongs in \(names.dropLast().joined(separator: ", ")) or \(names[names.count - 1]))"
        }
    }

    /// The candidate nearest to `word`, ignoring case, `_` and `-`, if it is close enough to be a
    /// likely misspelling.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let target = normalized(word)
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(target, normalized(candidate))
            let allowed = min(2, max(1, candidate.count / 3))
            if distance <= allowed && distance < (best?.distance ?? .max) {
                best = (candidate, distance)
            }
        }
        return best?.name
    }

    private static func normalized(_ word: String) -> [Character] {
        Array(word.lowercased().filter { $0 != "_" && $0 != "-" })
    }

    /// Levenshtein distance.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            previous = current
        }
        return previous[b.count]
    }
}
