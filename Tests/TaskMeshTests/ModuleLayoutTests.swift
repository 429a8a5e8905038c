import Foundation
import Testing
@testable import TaskMesh

/// The folders of Sources/TaskMesh are layers (docs/ARCHITECTURE.md, "Modules"): a file uses
/// only names declared in its own folder or in the folders its layer may use. Reads the sources:
/// a name declared at the top level of a file in one folder and mentioned in a file of another.
struct ModuleLayoutTests {
    /// What each folder may use (besides itself); the root holds `Mesh.swift`, the top.
    static let allowed: [String: Set<String>] = [
        "Model": [],
        "Support": [],
        "Protocol": ["Model", "Support"],
        "Topology": ["Model", "Protocol", "Support"],
        "Security": ["Model", "Protocol", "Support", "Topology"],
        "Runtime": ["Model", "Protocol", "Support", "Topology", "Security"],
        "Client": ["Model", "Protocol", "Support", "Topology", "Security", "Runtime"],
        "Worker": ["Model", "Protocol", "Support", "Topology", "Security", "Runtime"],
        "Sink": ["Model", "Protocol", "Support", "Topology", "Security", "Runtime"],
        "Broker": ["Model", "Protocol", "Support", "Topology", "Security", "Runtime"],
        "": ["Model", "Protocol", "Support", "Topology", "Security", "Runtime", "Client", "Worker", "Sink", "Broker"],
    ]
    /// Names that are also nested types of `Topology` (`Topology.Sink`, ...), which a topology
    /// file mentions without using the role; elsewhere the qualified name (`Topology.Sink`, the
    /// sink's settings) is no use of the role.
    static let ambiguous: Set<String> = ["Sink", "Broker", "Client", "Worker"]

    @Test func everyFolderUsesOnlyTheLayersBelowIt() throws {
        let root = RepositoryFiles.root.appendingPathComponent("Sources/TaskMesh")
        let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        func folder(_ path: String) -> String { path.contains("/") ? String(path.split(separator: "/")[0]) : "" }
        var declaredIn: [String: String] = [:]
        var sources: [String: String] = [:]
        let qualified = try Regex(#"\bTopology\.(Sink|Broker|Client|Worker)\b"#)
        let declaration = try Regex(#"(?m)^(?:public |internal |fileprivate |private |final )*(?:struct|class|enum|protocol|typealias|actor|func)\s+(\w+)"#)
        for file in files {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            sources[file] = text.split(separator: "\n").map { line in line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "" }
                .joined(separator: "\n").replacing(qualified, with: "Topology")
            for match in text.matches(of: declaration) {
                if let name = match.output[1].substring, declaredIn[String(name)] == nil { declaredIn[String(name)] = folder(file) }
            }
        }
        #expect(Set(files.map(folder)).isSubset(of: Set(Self.allowed.keys)), "a folder the layer table does not know")
        for (file, text) in sources {
            let own = folder(file)
            let words = Set(text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init))
            for word in words {
                guard let home = declaredIn[word], home != own else { continue }
                if own == "Topology" && Self.ambiguous.contains(word) { continue }
                #expect(Self.allowed[own]?.contains(home) == true, "\(file) uses \(word) from \(home.isEmpty ? "the root" : home + "/")")
            }
        }
    }

    /// The public API does not re-export the ZMQ layer, and the CLI stands on TaskMesh alone
    /// (CLI -> TaskMesh -> ZMQ -> CZMQ).
    @Test func zmqStaysBehindTheLibrarysPublicAPI() throws {
        let sources = RepositoryFiles.root.appendingPathComponent("Sources")
        for (folder, forbidden) in [("TaskMesh", "public import ZMQ"), ("taskmesh", "import ZMQ")] {
            let root = sources.appendingPathComponent(folder)
            let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            #expect(!files.isEmpty)
            for file in files {
                let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
                let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                #expect(!lines.contains { $0 == forbidden || $0.hasPrefix(forbidden + " ") }, "\(folder)/\(file): \(forbidden)")
            }
        }
    }

    @Test func theLinkedLibzmqIsReportedThroughTaskMesh() {
        #expect(MessagingLibrary.version.split(separator: ".").count == 3)
        #expect(MessagingLibrary.unsupportedReason == nil, "the libzmq this suite runs on is supported")
        #expect(MessagingLibrary.hasCurve, "Debian's libzmq is built with CURVE")
    }
}
