/// How long a reliable-mode worker's loop thread is busy per job it ends: reading the job,
/// running it when it runs inline, collecting its completion and sending its result. For jobs of
/// microseconds this, not the handlers' time, bounds how many jobs the worker ends per second,
/// so the credit that must hold a round trip's worth of work is sized by it (`WorkerCredit`).
/// Owned by the loop thread.
struct LoopCost {
    /// Jobs to end before a measurement counts; each measurement weighs 1/4 of the estimate.
    static let jobsPerMeasurement = 256
    private var busy: Duration = .zero
    private var jobs = 0
    private var meanNanoseconds: Double?

    /// Busy time per job ended; nil until `jobsPerMeasurement` jobs ended.
    var perJob: Duration? { meanNanoseconds.map { .nanoseconds(Int64($0.rounded())) } }

    /// One pass of the loop was busy for `elapsed` (from its wake-up to its next wait) and ended
    /// `ended` jobs.
    mutating func record(busy elapsed: Duration, ended: Int) {
        busy += elapsed
        jobs += ended
        guard jobs >= Self.jobsPerMeasurement else { return }
        let sample = busy.nanoseconds / Double(jobs)
        meanNanoseconds = meanNanoseconds.map { $0 + (sample - $0) / 4 } ?? sample
        busy = .zero
        jobs = 0
    }
}
