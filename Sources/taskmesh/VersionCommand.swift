import ArgumentParser
import ZMQ

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print TaskMesh's version and the linked libzmq's.")

    func run() throws {
        print("taskmesh \(TaskMeshVersion.current)")
        print("libzmq \(LibZMQ.version) (curve: \(LibZMQ.hasCurve ? "yes" : "no"))")
        do {
            try LibZMQ.requireSupported()
        } catch {
            writeError("error: \(error.message)")
            throw ExitCode.failure
        }
    }
}
