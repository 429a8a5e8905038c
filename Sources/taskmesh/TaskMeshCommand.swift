import ArgumentParser
import TaskMesh

@main
struct TaskMeshCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "taskmesh",
        abstract: "Spread jobs over worker processes with ZeroMQ and route every result back to its client.",
        version: TaskMeshVersion.current,
        subcommands: [
            DemoCommand.self, SinkCommand.self, BrokerCommand.self, WorkerCommand.self, SubmitCommand.self, UpCommand.self, KeygenCommand.self, VersionCommand.self,
        ]
    )
}
