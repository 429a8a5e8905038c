import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// The handler API: names, the job context, a handler's error on its way to the client.
struct HandlersTests {
    @Test func registeringABadHandlerNameThrows() {
        var handlers = Handlers()
        #expect(throws: HandlerNameError(name: "")) { try handlers.register("") { $0.payload } }
        let long = String(repeating: "x", count: 256)
        #expect(throws: HandlerNameError(name: long)) { try handlers.register(long) { $0.payload } }
        #expect(handlers.names.isEmpty)
    }

    @Test func aHandlerSeesItsJobContext() async throws {
        let mesh = try await localMesh()
        let seen = Shared<JobContext?>(nil)
        var handlers = Handlers()
        try handlers.register("context", as: [Int].self) { (input: [Int], context: JobContext) in
            seen.update { $0 = context }
            context.logger.debug("running")  // a logger with the job's metadata
            return input.reduce(0, +)
        }
        try await mesh.worker(handlers)
        let client = try await mesh.client()
        let sum: Int = try await client.submit("context", [1, 2, 3], options: JobOptions(deadline: .seconds(30), id: JobID("ctx-1")))
        #expect(sum == 6)
        let context = try #require(seen.value)
        #expect(context.id == JobID("ctx-1"))
        #expect(context.handler == "context")
        #expect(context.attempt == 1)
        #expect(context.clientID.count == 16)
        let deadline = try #require(context.deadline)
        let left = ContinuousClock.now.duration(to: deadline)
        #expect(left > .seconds(20) && left <= .seconds(30), "the deadline is the time remaining on this host's clock: \(left)")
        #expect(context.logger[metadataKey: "job"] == "ctx-1")
        await mesh.shutdown()
    }

    @Test func aHandlersErrorReachesTheClientWithItsTypeName() async throws {
        struct ImageError: Error, CustomStringConvertible {
            var description: String { "no such image" }
        }
        let mesh = try await localMesh()
        var handlers = Handlers()
        try handlers.register("image") { _ in throw ImageError() }
        try await mesh.worker(handlers)
        let client = try await mesh.client()
        do {
            _ = try await client.submit("image", [])
            Issue.record("the failing handler succeeded")
        } catch {
            #expect(error.code == .handlerFailed)
            #expect(error.errorType == "ImageError")
            #expect(error.message == "no such image")
        }
        await mesh.shutdown()
    }

}
