/// Told of every job a worker's handler is about to run, before it runs, on the thread that
/// runs it (a runner, or the loop for a job run inline): so it must be quick and thread-safe.
/// The worker's job path knows observers only through this; the execution log is one.
protocol JobStartObserver: Sendable {
    func jobStarting(_ job: JobMessage)
}
