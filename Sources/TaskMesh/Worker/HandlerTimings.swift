/// How long each handler's recent jobs took, to decide which ones a worker may run on its loop
/// thread (`JobRunner`): a handler whose jobs finish within microseconds costs more in the two
/// thread hand-offs to and from a runner than in running it, while a slow or suspending one
/// must not hold up the loop (heartbeats, reading, sending). Owned by the loop thread.
struct HandlerTimings {
    /// Handlers whose recent jobs average below this run inline.
    static let inlineBelow: Duration = .microseconds(20)
    /// Jobs a handler must have finished (through runners) before it may run inline.
    static let samplesNeeded = 8
    /// A job that ran longer than this (on the loop thread it held everything up) sends its
    /// handler back to the runners for the next `cooldown` jobs, whatever its mean.
    static let slowJob: Duration = .milliseconds(1)
    static let cooldown = 256

    private struct Timing {
        var samples = 0
        /// Exponentially weighted mean, in nanoseconds; recent jobs weigh 1/8.
        var meanNanoseconds: Double = 0
        /// Jobs still to finish before a slow one is forgiven.
        var cooldown = 0
    }

    private var timings: [String: Timing] = [:]
    /// The handler recorded last, kept out of `timings` while it is: a worker's jobs mostly come
    /// from one handler in a row, and comparing its name costs less than hashing it per job.
    private var latest: (handler: String, timing: Timing)?

    /// Jobs recorded, of any handler, and their exponentially weighted mean time in nanoseconds
    /// (recent jobs weigh 1/64): what a reliable-mode worker sizes its credit by.
    private(set) var jobsRecorded = 0
    /// Jobs recorded that ran longer than `slowJob`.
    private(set) var slowJobsRecorded = 0
    private var overallMeanNanoseconds: Double = 0
    /// Whether the last job recorded took more than `outlierWeight` times the mean.
    private var lastWasOutlier = false
    /// A lone job that took more than this many times the mean counts as this many times the
    /// mean: a thread descheduled in the middle of a job of microseconds says nothing about the
    /// jobs, and counted whole it would shrink the credit for the next hundred. A second such job
    /// in a row counts whole (the jobs did become slower).
    static let outlierWeight: Double = 8

    /// The mean time of recent jobs of any handler; nil until `samplesNeeded` jobs ended.
    var meanJobDuration: Duration? {
        jobsRecorded >= Self.samplesNeeded ? .nanoseconds(Int64(overallMeanNanoseconds.rounded())) : nil
    }

    /// Records that a job of `handler` ran for `elapsed` (suspensions included).
    mutating func record(_ handler: String, _ elapsed: Duration) {
        let nanoseconds = elapsed.nanoseconds
        let slow = elapsed > Self.slowJob
        let ceiling = overallMeanNanoseconds * Self.outlierWeight
        let outlier = jobsRecorded > 0 && nanoseconds > ceiling
        let counted = outlier && !lastWasOutlier ? ceiling : nanoseconds
        overallMeanNanoseconds = jobsRecorded == 0 ? counted : overallMeanNanoseconds + (counted - overallMeanNanoseconds) / 64
        lastWasOutlier = outlier
        jobsRecorded += 1
        if slow { slowJobsRecorded += 1 }
        if latest?.handler != handler {
            if let latest { timings[latest.handler] = latest.timing }
            latest = (handler, timings.removeValue(forKey: handler) ?? Timing())
        }
        var timing = latest!.timing
        timing.meanNanoseconds = timing.samples == 0 ? nanoseconds : timing.meanNanoseconds + (nanoseconds - timing.meanNanoseconds) / 8
        timing.samples += 1
        timing.cooldown = slow ? Self.cooldown : max(0, timing.cooldown - 1)
        latest!.timing = timing
    }

    /// Whether `handler` has been measured fast enough to run inline.
    func isFast(_ handler: String) -> Bool {
        let measured = latest?.handler == handler ? latest?.timing : timings[handler]
        guard let timing = measured, timing.samples >= Self.samplesNeeded, timing.cooldown == 0 else { return false }
        let limit = Self.inlineBelow.nanoseconds
        return timing.meanNanoseconds < limit
    }
}
