import Foundation
import Testing
@testable import TaskMesh

/// docs/TOPOLOGY.md against the one declaration of the format, `TopologySchema`: the document
/// describes every field the loader reads, with the type, default and constraints the
/// declaration gives, and no field the loader does not read; and every default written as a
/// plain value is the value a file gets when it leaves the field out.
@Suite struct TopologySchemaTests {
    /// The rows of the document's field tables (`| field | type | default | constraints | meaning |`).
    private static func documentRows() throws -> [String: [String]] {
        var rows: [String: [String]] = [:]
        var inFieldTable = false
        for line in try RepositoryFiles.text("docs/TOPOLOGY.md").split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("|") else { inFieldTable = false; continue }
            let cells = line.dropFirst().dropLast(line.hasSuffix("|") ? 1 : 0).split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            if cells == ["field", "type", "default", "constraints", "meaning"] { inFieldTable = true; continue }
            guard inFieldTable, let name = cells.first, name.hasPrefix("`"), name.hasSuffix("`") else { continue }
            rows[String(name.dropFirst().dropLast())] = Array(cells.dropFirst())
        }
        return rows
    }

    @Test func everyDeclaredFieldHasTheRowItsDeclarationSays() throws {
        let rows = try Self.documentRows()
        for field in TopologySchema.documentedFields {
            guard let row = rows[field.path] else {
                Issue.record("docs/TOPOLOGY.md has no row for \(field.path)")
                continue
            }
            #expect(row.count == 4, "\(field.path): expected type, default, constraints and meaning cells, got \(row)")
            guard row.count == 4 else { continue }
            #expect(row[0] == field.type, "\(field.path): type")
            #expect(row[1] == field.defaultValue, "\(field.path): default")
            #expect(row[2] == field.constraints, "\(field.path): constraints")
            #expect(row[3].hasPrefix(field.meaning), "\(field.path): the meaning should begin \"\(field.meaning)\"")
        }
    }

    @Test func theDocumentDescribesNoFieldTheLoaderDoesNotRead() throws {
        let declared = Set(TopologySchema.documentedFields.map(\.path))
        let undeclared = try Self.documentRows().keys.filter { !declared.contains($0) }
        #expect(undeclared.isEmpty, "rows in docs/TOPOLOGY.md for fields the loader does not read: \(undeclared.sorted())")
    }

    @Test func theDeclarationCoversEveryNameTheLoaderAccepts() {
        let fields = Set(TopologySchema.documentedFields.map(\.path))
        for (section, names) in TopologySchema.names {
            for name in names {
                let path = TopologySection.join(section, name)
                #expect(fields.contains(path) || TopologySchema.names[path] != nil, "\(path) is neither a field nor a section")
            }
        }
        #expect(fields.count == TopologySchema.documentedFields.count, "a field is declared twice")
    }

    /// Writing a field's documented default into a file leaves the topology as it was without it.
    @Test func everyPlainDefaultIsTheDefault() throws {
        var checked = 0
        for field in TopologySchema.documentedFields {
            let value = field.defaultValue
            guard value.hasPrefix("`"), value.hasSuffix("`"), value.dropFirst().dropLast().allSatisfy({ $0 != "`" }) else { continue }
            let plain = String(value.dropFirst().dropLast())
            let mode = field.path.hasPrefix("broker.") ? "reliable" : "direct"
            let base = Self.file(mode: mode, security: field.path.hasPrefix("security."))
            let without = try Topology.parse(yaml: Self.render(base))
            let with = try Topology.parse(yaml: Self.render(Self.setting(field.path, to: plain, in: base)))
            #expect(with == without, "\(field.path): the document says it defaults to \(plain)")
            checked += 1
        }
        #expect(checked >= 20, "only \(checked) defaults were plain values")
    }

    private indirect enum Node {
        case scalar(String)
        case mapping([(String, Node)])
    }

    private static func file(mode: String, security: Bool) -> Node {
        let hub: (String, Node) = mode == "reliable"
            ? ("broker", .mapping([("clients", .mapping([("bind", .scalar("\"tcp://*:5801\""))])),
                                   ("workers", .mapping([("bind", .scalar("\"tcp://*:5802\""))]))]))
            : ("sink", .mapping([("results", .mapping([("bind", .scalar("\"tcp://*:5701\""))])),
                                 ("clients", .mapping([("bind", .scalar("\"tcp://*:5702\""))]))]))
        var top: [(String, Node)] = [("mode", .scalar(mode)), hub]
        if security { top.append(("security", .mapping([]))) }
        return .mapping(top)
    }

    private static func setting(_ path: String, to value: String, in node: Node) -> Node {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        guard case .mapping(var pairs) = node else { return node }
        let rest = parts.count > 1 ? parts[1] : nil
        if let index = pairs.firstIndex(where: { $0.0 == parts[0] }) {
            pairs[index].1 = rest.map { setting($0, to: value, in: pairs[index].1) } ?? .scalar(value)
        } else {
            pairs.append((parts[0], rest.map { setting($0, to: value, in: .mapping([])) } ?? .scalar(value)))
        }
        return .mapping(pairs)
    }

    private static func render(_ node: Node, indent: String = "") -> String {
        guard case .mapping(let pairs) = node else { return "" }
        return pairs.map { key, value in
            switch value {
            case .scalar(let text): "\(indent)\(key): \(text)\n"
            case .mapping(let inner) where inner.isEmpty: "\(indent)\(key): {}\n"
            case .mapping: "\(indent)\(key):\n" + render(value, indent: indent + "  ")
            }
        }.joined()
    }
}
