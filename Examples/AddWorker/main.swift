// A user's own worker: registers a typed `add` handler and serves the mesh that
// $TASKMESH_TOPOLOGY describes (default: topologies/direct.yaml's loopback sink) until SIGTERM or
// Ctrl-C, then stops gracefully.
//
//   taskmesh sink -t topologies/direct.yaml &
//   TASKMESH_TOPOLOGY=topologies/direct.yaml swift run example-add-worker
import AddTypes
import Foundation
import Logging
import ServiceLifecycle
import TaskMesh

let topology = try Topology.fromEnvironment(default: .loopback(port: 5701))
var handlers = Handlers()
try handlers.register(addHandlerName, as: Add.self, validate: { add in
    if add.x.magnitude > 1 << 60 || add.y.magnitude > 1 << 60 { throw JobRejection("x and y must be below 2^60") }
}) { add in
    Sum(value: add.x + add.y)
}

let logger = Logger(label: "example.add-worker")
let worker = try Worker(topology: topology, handlers: handlers, logger: logger)
try await worker.start()
// The line scripts wait for; written unbuffered so it shows at once even into a pipe.
FileHandle.standardOutput.write(Data("ready endpoint=\(worker.endpoint ?? "")\n".utf8))
let group = ServiceGroup(configuration: .init(
    services: [.init(service: worker)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
try await group.run()
