import ArgumentParser
import TaskMesh

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print TaskMesh's version and the linked libzmq's.")

    func run() throws {
        print("taskmesh \(TaskMeshVersion.current)")
        print("libzmq \(MessagingLibrary.version) (curve: \(MessagingLibrary.hasCurve ? "yes" : "no"))")
        if let reason = MessagingLibrary.unsupportedReason {
            writeError("error: \(reason)")
            throw ExitCode.failure
        }
    }
}
