/// The job both sides of the example agree on: its input and its output, as Codable values.
/// TaskMesh carries them as JSON.
public struct Add: Codable, Sendable {
    public let x: Int
    public let y: Int
    public init(x: Int, y: Int) {
        self.x = x
        self.y = y
    }
}

public struct Sum: Codable, Sendable, Equatable {
    public let value: Int
    public init(value: Int) { self.value = value }
}

/// The handler name the worker registers and the client submits to.
public let addHandlerName = "add"
