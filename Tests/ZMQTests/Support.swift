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

/// `count` bytes that differ from run to run, made quickly: a SplitMix64 stream seeded once from
/// the system's generator, eight bytes per step. (Drawing each byte from the system generator
/// costs a system call per byte: seconds for a few MiB, during which this synchronous test holds
/// one of the cooperative pool's two threads that the other tests' tasks need.)
func randomBytes(_ count: Int) -> [UInt8] {
    var state = UInt64.random(in: .min ... .max)
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        withUnsafeBytes(of: mixed) { bytes.append(contentsOf: $0) }
    }
    bytes.removeLast(bytes.count - count)
    return bytes
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
