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
