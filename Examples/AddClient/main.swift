// A user's own client: submits `add` jobs to the mesh that $TASKMESH_TOPOLOGY describes and awaits
// each result as a future. Start the sink and example-add-worker first.
//
//   TASKMESH_TOPOLOGY=topologies/direct.yaml swift run example-add-client
import AddTypes
import TaskMesh

let topology = try Topology.fromEnvironment(default: .loopback(port: 5701))
let mesh = try await Mesh.start(topology: topology)
let client = try await mesh.client()
// Wait for a worker that has the handler: in a mesh of specialised workers, others may be up first.
try await client.waitForWorkers(1, handling: addHandlerName, timeout: .seconds(10))

// One job, awaited right away.
let sum: Sum = try await client.submit(addHandlerName, Add(x: 1, y: 2))
print("1 + 2 = \(sum.value)")

// Several jobs in flight at once, awaited later.
let handles = try (1...5).map { n in try client.enqueue(addHandlerName, Add(x: n, y: n * 10), as: Sum.self) }
for (n, handle) in zip(1..., handles) {
    print("\(n) + \(n * 10) = \(try await handle.value().value)")
}

// A job the handler's validation refuses.
do {
    let _: Sum = try await client.submit(addHandlerName, Add(x: 1 << 62, y: 1))
} catch {
    print("refused: \(error.code): \(error.message)")
}
await mesh.shutdown()
