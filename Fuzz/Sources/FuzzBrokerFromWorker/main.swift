import FuzzSupport
@testable import TaskMesh

// What a broker decodes from a worker: READY, RESULT, RESULTS (every entry walked), PROGRESS,
// HEARTBEAT, BYE and DISCONNECT.
runFuzzer { bytes in
    switch try? WorkerToBroker.decode(bytes) {
    case .ready(let ready)?:
        requireRoundTrip(ready, encode: { $0.encode() }, decode: { try ReadyMessage.decode(ReceivedMessage($0)) }, "READY")
    case .result(let result)?:
        requireRoundTrip(result, encode: { $0.encode() }, decode: ResultMessage.decode, "RESULT")
    case .results(let batch)?:
        try? batch.forEach { requireRoundTrip($0, encode: { $0.encode() }, decode: ResultMessage.decode, "a RESULTS entry") }
    case .progress(let progress)?:
        requireRoundTrip(progress, encode: { $0.encode() }, decode: ProgressMessage.decode, "PROGRESS")
    case .heartbeat?, .bye?, .disconnect?, nil:
        break
    }
}
