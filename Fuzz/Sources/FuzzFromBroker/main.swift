import FuzzSupport
@testable import TaskMesh

// What a reliable-mode client and worker decode from the broker: JOB, JOBS and RESULTS (every
// entry walked), RESULT, HEARTBEAT, CANCEL, PROGRESS and DISCONNECT.
runFuzzer { bytes in
    switch try? FromBroker.decode(bytes) {
    case .job(let job)?:
        requireRoundTrip(job, encode: { $0.encode() }, decode: JobMessage.decode, "JOB")
    case .jobs(let batch)?:
        try? batch.forEach { requireRoundTrip($0, encode: { $0.encode() }, decode: JobMessage.decode, "a JOBS entry") }
    case .result(let result)?:
        requireRoundTrip(result, encode: { $0.encode() }, decode: ResultMessage.decode, "RESULT")
    case .results(let batch)?:
        try? batch.forEach { requireRoundTrip($0, encode: { $0.encode() }, decode: ResultMessage.decode, "a RESULTS entry") }
    case .cancel(let cancel)?:
        requireRoundTrip(cancel, encode: { $0.encode() }, decode: CancelMessage.decode, "CANCEL")
    case .progress(let progress)?:
        requireRoundTrip(progress, encode: { $0.encode() }, decode: ProgressMessage.decode, "PROGRESS")
    case .heartbeat?, .disconnect?, nil:
        break
    }
}
