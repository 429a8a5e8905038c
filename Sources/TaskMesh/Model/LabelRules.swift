/// What a worker label (and a job's required label) may be: 1 to 255 UTF-8 bytes of ASCII
/// letters, digits, `.`, `_`, `-`, `:` or `/`, so labels read the same in topology files, on the
/// command line and in logs.
public enum LabelRules {
    /// Why `label` is not acceptable, or nil when it is.
    public static func problem(with label: String) -> String? {
        if label.isEmpty { return "a label must not be empty" }
        if label.utf8.count > 255 { return "a label is at most 255 bytes, got \(label.utf8.count)" }
        let allowed = label.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "._-:/".unicodeScalars.contains(scalar))
        }
        return allowed ? nil : "a label holds letters, digits, '.', '_', '-', ':' or '/' only, got \"\(label)\""
    }
}
