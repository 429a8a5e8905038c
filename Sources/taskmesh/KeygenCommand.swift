import ArgumentParser
import TaskMesh

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (public).",
        discussion: """
        Topology files name these files, never the keys themselves. Give each role (or each process) \
        its own pair; put the .pub files of clients and workers on the allowlists of the servers.
        """)

    @Argument(help: "The name of the pair, e.g. sink, worker-1, client-billing.")
    var name: String

    @Option(help: "The folder to write the files in.")
    var dir: String = "."

    func validate() throws {
        guard !name.isEmpty, !name.contains("/") else { throw ValidationError("NAME is a file name without '/'") }
    }

    func run() throws {
        let paths = try KeyFiles.generate(name: name, in: dir)
        print("wrote \(paths.secret) (secret, keep it private) and \(paths.public)")
    }
}
