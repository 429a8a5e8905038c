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
    var isASCIIDigit: Bool { asciiValue.map { (48...57).contains($0) } ?? false }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line breaks.
    func trimmingSpaces() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0.isNewline }
        let start = firstIndex(where: { !isSpace($0) }) ?? endIndex
        let end = lastIndex(where: { !isSpace($0) }).map { index(after: $0) } ?? start
        return self[start..<end]
    }
}

/// The duration syntax of topology files, for other front ends (the command line's flags) to
/// read and write durations exactly as the files do.
public enum DurationSyntax {
    /// Reads `500ms`, `1s`, `1.5 s`, `2m`, `1h`, `0s`; throws `DurationSyntaxError` (with a
    /// message for people) for anything else, a bare number included.
    public static func parse(_ text: String) throws(DurationSyntaxError) -> Duration {
        do {
            return try ValueParsing.duration(text)
        } catch {
            throw DurationSyntaxError(text: text, message: error.message)
        }
    }

    /// Writes a duration the way a topology file would: `1s`, `1500ms`, `2m`.
    public static func format(_ duration: Duration) -> String { ValueParsing.format(duration) }
}

/// A duration that `DurationSyntax.parse` could not read.
public struct DurationSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public let text: String
    public let message: String
    public var description: String { "\"\(text)\": \(message)" }
}
