import Foundation
import Testing
@testable import TaskMesh

@Suite struct RouteMessageTests {
    @Test func namesAMissingHandlerAndWhatTheMeshHas() {
        let text = RouteMessage.missing(handler: "resize", requires: [], handlers: ["echo", "sha256"], labels: [])
        #expect(text == "no live worker has a handler named \"resize\"; the mesh's workers have: echo, sha256")
    }

    @Test func namesTheMissingLabelWhenTheHandlerExists() {
        let text = RouteMessage.missing(handler: "echo", requires: ["eu", "gpu"], handlers: ["echo"], labels: ["eu"])
        #expect(text.contains("missing: \"gpu\""), "\(text)")
        #expect(!text.contains("missing: \"eu\""), "\(text)")
        #expect(text.contains("(labels: eu)"))
    }
}
