import CFuzzer
import Foundation

/// The target `runFuzzer` feeds; set once, before libFuzzer starts.
nonisolated(unsafe) private var target: (([UInt8]) -> Void)?

/// Runs libFuzzer with the program's arguments (its flags, corpus directories or input files),
/// handing each input to `body` as the frame a socket would have received; exits with
/// libFuzzer's status. `body` stops the process (a crash libFuzzer keeps) when a property fails.
public func runFuzzer(_ body: @escaping ([UInt8]) -> Void) -> Never {
    target = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        target?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }
    exit(status)
}

/// Stops the run (libFuzzer keeps the input as a crash) when a decoded message, encoded again and
/// decoded, is not the same message: the codec would change what it forwards.
public func requireRoundTrip<Message: Equatable>(_ message: Message, encode: (Message) -> [UInt8],
                                                 decode: ([UInt8]) throws -> Message, _ what: String) {
    let bytes = encode(message)
    guard let again = try? decode(bytes) else { fatalError("\(what): its own encoding does not decode: \(bytes)") }
    guard again == message else { fatalError("\(what): decoded \(message), after a round trip \(again)") }
}

/// libFuzzer's own entry, for its `main` when that is the one linked: the same target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
