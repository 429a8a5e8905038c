import Foundation
internal import Yams

/// Turns YAML text into a `ConfigValue` tree, reporting syntax errors with their position.
enum YAMLDocument {
    static func root(of yaml: String, source: String) throws(TopologyError) -> ConfigValue {
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as Yams.YamlError {
            throw TopologyError(source: source, field: nil, message: describe(error))
        } catch {
            throw TopologyError(source: source, field: nil, message: "invalid YAML: \(error)")
        }
        var root = ConfigValue.null
        if let node {
            var budget = maxValues
            do throws(ValueBudgetExceeded) {
                root = try ConfigValue(node, budget: &budget)
            } catch {
                throw TopologyError(source: source, field: nil, message: "the file holds more than \(maxValues) values once its aliases "
                                    + "are expanded (aliases of aliases multiply); a topology needs a few hundred")
            }
        }
        if case .null = root {
            throw TopologyError(source: source, field: nil,
                                message: "the file is empty; a topology needs at least a \"mode:\" field")
        }
        return root
    }

    /// The most scalars, sequences and mappings a topology may hold, counted with every alias
    /// expanded where it is used: a few hundred bytes of nested aliases (a "billion laughs")
    /// would otherwise expand to billions.
    static let maxValues = 100_000

    private static func describe(_ error: Yams.YamlError) -> String {
        switch error {
        case let .scanner(context, problem, mark, yaml), let .parser(context, problem, mark, yaml),
             let .composer(context, problem, mark, yaml):
            var text = "invalid YAML at line \(mark.line), column \(mark.column): \(problem)"
            if let context {
                text += " (\(context.text) at line \(context.mark.line))"
            }
            if character(in: yaml, line: mark.line, column: mark.column) == "\t" {
                text += "; YAML indents with spaces, not tabs"
            }
            return text
        case let .reader(problem, offset, _, yaml):
            guard let offset else { return "unreadable text: \(problem)" }
            let line = yaml.prefix(offset).filter(\.isNewline).count + 1
            return "unreadable text at line \(line): \(problem)"
        case let .duplicatedKeysInMapping(duplicates, context):
            let names = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            let subject = duplicates.count == 1 ? "field \(names) appears" : "fields \(names) appear"
            return "invalid YAML at line \(context.mark.line): \(subject) more than once in the same mapping"
        default:
            return "invalid YAML: \(error)"
        }
    }

    /// The character at a 1-based line and column (counted in Unicode scalars, as Yams does).
    private static func character(in text: String, line: Int, column: Int) -> Unicode.Scalar? {
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        guard (1...lines.count).contains(line), column >= 1 else { return nil }
        let scalars = lines[line - 1]
        guard column <= scalars.count else { return nil }
        return scalars[scalars.index(scalars.startIndex, offsetBy: column - 1)]
    }
}

extension ConfigValue {
    /// Keeps what the topology format needs from a composed YAML node: scalars by resolved type,
    /// sequences, and mappings in document order with their keys as text.
    /// Each value made takes one from `budget`; none left fails the conversion.
    fileprivate init(_ node: Yams.Node, budget: inout Int) throws(ValueBudgetExceeded) {
        budget -= 1
        guard budget >= 0 else { throw ValueBudgetExceeded() }
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Yams.Tag.Name.null.rawValue: self = .null
            case Yams.Tag.Name.str.rawValue: self = .string(scalar.string)
            case Yams.Tag.Name.int.rawValue: self = node.int.map { .int($0, text: scalar.string) } ?? .other(scalar.string)
            default: self = .other(scalar.string)
            }
        case .sequence(let sequence):
            var items: [ConfigValue] = []
            for item in sequence { items.append(try ConfigValue(item, budget: &budget)) }
            self = .sequence(items)
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigValue)] = []
            for pair in mapping {
                let key: String
                if let text = pair.key.scalar?.string { key = text } else { key = try ConfigValue(pair.key, budget: &budget).rendered }
                pairs.append((key: key, value: try ConfigValue(pair.value, budget: &budget)))
            }
            self = .mapping(pairs)
        case .alias:
            // Yams resolves aliases while composing; an alias node is not expected here.
            self = .other("*alias")
        }
    }
}

/// A document past `YAMLDocument.maxValues`.
struct ValueBudgetExceeded: Error {}
