import Foundation
import Testing
@testable import TaskMesh

// Files and fragments the topology tests read.

/// The repository's topologies/ folder.
let topologiesFolder = RepositoryFiles.root.appendingPathComponent("topologies")

func examplePath(_ name: String) -> String {
    topologiesFolder.appendingPathComponent(name).path
}

/// The error `Topology.parse` throws for `yaml`, or nil if it parses.
func parseError(_ yaml: String, source: String = "test.yaml") -> TopologyError? {
    do {
        _ = try Topology.parse(yaml: yaml, source: source)
        return nil
    } catch {
        return error
    }
}

/// Writes `contents` to a fresh temporary file and passes its path to `body`.
func withTemporaryFile<T>(_ contents: Data, _ body: (String) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("taskmesh-topology-\(UUID().uuidString).yaml")
    try contents.write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

let directSink = """
    mode: direct
    sink:
      results:
        bind: tcp://*:5701
      clients:
        bind: tcp://*:5702

    """

let reliableBroker = """
    mode: reliable
    broker:
      clients:
        bind: tcp://*:5801
      workers:
        bind: tcp://*:5802

    """
