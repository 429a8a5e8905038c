/// How many jobs a reliable-mode worker tells the broker it may hold at once (the `concurrency`
/// field of its READY).
///
/// With `worker.prefetch` set, that is `concurrency + prefetch`. Unset, the worker sizes the
/// part beyond `concurrency` from how long its jobs take: enough to keep its runners busy while
/// results travel to the broker and new jobs back, at most `maximumPrefetch` jobs and at most
/// `maximumPrefetchBytes` of payload at the jobs' recent mean size. A job takes the worker its
/// mean time over `concurrency`, or its loop thread's busy time per job (`LoopCost`) where that
/// is more: jobs of microseconds end no faster than the loop reads them and sends their results,
/// and a credit sized by their handlers' time alone would queue several windows of work at the
/// worker, where another client's job then waits behind it. That time is the round trip
/// the worker measured (`RoundTripEstimate`) with half again for the broker's batching, at least
/// `window` and at most `maximumWindow`: behind a 200 ms link a worker of 10 ms jobs on 4 runners
/// asks for about 124 jobs, not 4, and keeps its runners busy. The floor is one wake-up of a
/// busy broker, which reads clients for up to 20 ms (`BrokerLoop.clientReadBudget`) before it
/// sends jobs again: with less, a worker of short jobs idles through it, and the broker and
/// worker exchange smaller batches, which cost more per job. Jobs of milliseconds get a few
/// (none once the mean passes `window × concurrency`), so a slow worker collects no backlog that
/// an idle one could run, and a prefetched job's lease runs about `window` before it starts;
/// jobs of microseconds get hundreds to thousands, so the worker never idles waiting for the
/// network.
/// Before it has timed a few jobs a worker asks for `concurrency` alone.
///
/// Either way the credit stays within half the send high-water mark (or `concurrency`, if that
/// is more), so the broker's queue to the worker never fills (a full one is taken for a lost
/// worker). A worker announces a new credit in another READY on the same connection, and when
/// it shrinks hands back (`declined`) the waiting jobs beyond it.
struct WorkerCredit: Equatable {
    /// As long as `BrokerLoop.clientReadBudget` (a test holds them equal).
    static let window: Duration = .milliseconds(20)
    static let maximumWindow: Duration = .seconds(1)
    static let maximumPrefetch = 4096
    static let maximumPrefetchBytes = 16 << 20
    /// What a job counts for against `maximumPrefetchBytes` beyond its payload.
    static let bytesPerJob = 64

    let concurrency: Int
    /// `worker.prefetch`; nil: sized from the jobs' mean time.
    let prefetch: Int?
    /// `limits.send_hwm`; 0: none.
    let sendHighWaterMark: Int

    /// The credit to announce, given the recent mean job time (nil: none measured yet), payload
    /// size, round trip to the broker and loop time per job (each nil: none measured yet).
    func credit(meanJob: Duration?, meanPayloadBytes: Double = 0, roundTrip: Duration? = nil, loopCost: Duration? = nil) -> Int {
        var extra = prefetch ?? autoPrefetch(meanJob: meanJob, meanPayloadBytes: meanPayloadBytes, roundTrip: roundTrip, loopCost: loopCost)
        if sendHighWaterMark > 0 { extra = min(extra, max(0, sendHighWaterMark / 2 - concurrency)) }
        return concurrency + extra
    }

    /// How long the runners must be kept busy while results and jobs cross the link.
    static func window(roundTrip: Duration?) -> Duration {
        guard let roundTrip else { return window }
        return min(maximumWindow, max(window, roundTrip * 3 / 2))
    }

    private func autoPrefetch(meanJob: Duration?, meanPayloadBytes: Double, roundTrip: Duration?, loopCost: Duration?) -> Int {
        guard let meanJob else { return 0 }
        let perJob = max(meanJob.nanoseconds / Double(concurrency), loopCost?.nanoseconds ?? 0)
        let byTime = Self.window(roundTrip: roundTrip).nanoseconds / max(1, perJob)
        let bySize = Double(Self.maximumPrefetchBytes) / (max(0, meanPayloadBytes) + Double(Self.bytesPerJob))
        let jobs = min(byTime, bySize)
        return jobs >= Double(Self.maximumPrefetch) ? Self.maximumPrefetch : Int(jobs)
    }

    /// Whether a worker that announced `announced` should announce `next` instead: only for a
    /// change of a quarter or more, so credit settles instead of chasing every measurement.
    static func worthAnnouncing(_ next: Int, over announced: Int) -> Bool {
        next * 4 >= announced * 5 || next * 5 <= announced * 4
    }
}
