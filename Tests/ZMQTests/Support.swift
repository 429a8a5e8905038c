import Foundation
import ZMQ

/// A unique endpoint per call so parallel tests never collide: tcp binds take an ephemeral port.
enum Transport: String, CaseIterable, CustomStringConvertible {
    case inproc, ipc, tcp

    func bindEndpoint() -> String {
        switch self {
        case .inproc: "inproc://zmqtests-\(UUID().uuidString)"
        case .ipc: "ipc://\(NSTemporaryDirectory())zmqtests-\(UUID().uuidString.prefix(8)).sock"
        case .tcp: "tcp://127.0.0.1:0"
        }
    }

    var description: String { rawValue }
}

/// Binds `server` and connects `client`, returning the resolved endpoint.
@discardableResult
func pair(_ server: Socket, _ client: Socket, over transport: Transport) throws -> String {
    let endpoint = try server.bind(transport.bindEndpoint())
    try client.connect(endpoint)
    return endpoint
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// Receives with a deadline so a broken test fails instead of hanging.
func receive(_ socket: Socket, within timeout: Duration = .seconds(5)) throws -> [[UInt8]] {
    try socket.set(.receiveTimeout, timeout)
    return try socket.receive()
}

func elapsed(_ body: () throws -> Void) rethrows -> Duration {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return clock.now - start
}
