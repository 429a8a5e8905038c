import FuzzSupport
@testable import TaskMesh

// What a direct-mode worker and a broker decode from a client: JOB, JOBS (every entry walked)
// and CANCEL.
runFuzzer { bytes in
    if let job = try? JobMessage.decode(bytes) {
        requireRoundTrip(job, encode: { $0.encode() }, decode: JobMessage.decode, "JOB")
    }
    if let batch = try? JobBatch.decode(bytes) {
        try? batch.forEach { requireRoundTrip($0, encode: { $0.encode() }, decode: JobMessage.decode, "a JOBS entry") }
    }
    if let cancel = try? CancelMessage.decode(bytes) {
        requireRoundTrip(cancel, encode: { $0.encode() }, decode: CancelMessage.decode, "CANCEL")
    }
}
