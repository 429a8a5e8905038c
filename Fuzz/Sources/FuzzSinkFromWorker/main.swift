import FuzzSupport
@testable import TaskMesh

// What a sink decodes from a worker: RESULT, RESULTS and PROGRESS as far as routing needs
// (from the message's first bytes, as the sink reads them), ANNOUNCE and BYE whole.
runFuzzer { bytes in
    let whole = try? WorkerToSink.decode(bytes)
    let routed = try? WorkerToSink.decode(prefix: Array(bytes.prefix(WorkerToSink.routingPrefix)), count: bytes.count, whole: { bytes })
    guard whole == routed else { fatalError("the routing prefix decodes \(String(describing: routed)), the whole message \(String(describing: whole))") }
    switch whole {
    case .announce(let announce)?:
        requireRoundTrip(announce, encode: { $0.encode() }, decode: AnnounceMessage.decode, "ANNOUNCE")
    case .bye(let bye)?:
        requireRoundTrip(bye, encode: { $0.encode() }, decode: ByeMessage.decode, "BYE")
    default:
        break
    }
}
