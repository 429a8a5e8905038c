import FuzzSupport
@testable import TaskMesh

// What a direct-mode client decodes from the sink: RESULT, RESULTS (every entry walked),
// MEMBERS and PROGRESS.
runFuzzer { bytes in
    switch try? SinkToClient.decode(bytes) {
    case .result(let result)?:
        requireRoundTrip(result, encode: { $0.encode() }, decode: ResultMessage.decode, "RESULT")
    case .results(let batch)?:
        try? batch.forEach { requireRoundTrip($0, encode: { $0.encode() }, decode: ResultMessage.decode, "a RESULTS entry") }
    case .members(let members)?:
        requireRoundTrip(members, encode: { $0.encode() }, decode: MembersMessage.decode, "MEMBERS")
    case .progress(let progress)?:
        requireRoundTrip(progress, encode: { $0.encode() }, decode: ProgressMessage.decode, "PROGRESS")
    case nil:
        break
    }
}
