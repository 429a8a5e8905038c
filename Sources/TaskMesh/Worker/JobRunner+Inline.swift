import Synchronization

extension JobRunner {
    /// Runs jobs on this (the loop's) thread, one after another, until one suspends or they
    /// have run for `inlineBudget`: the jobs that finished are taken at once, the ones not
    /// started go to the runners, and a job that suspended goes on on the executor and reports
    /// through the completion queue, like a runner's.
    func runInline(_ jobs: [Accepted], borrowing runner: RunQueue<Accepted>.Borrowed) {
        let handOff = InlineHandOff(jobs)
        Self.startInline(handOff, borrowing: runner, runners)
        let (finished, notStarted) = handOff.loopMovesOn()
        for completion in finished { absorb(completion) }
        if !notStarted.isEmpty { queue.push(notStarted) }
    }

    /// Jobs run inline are not registered as running: they are measured to take microseconds,
    /// so neither CANCEL nor their deadline interrupts them (a queued one is still skipped).
    static func startInline(_ handOff: InlineHandOff, borrowing runner: RunQueue<Accepted>.Borrowed, _ runners: Runners) {
        Task.immediate { [handOff, runner, runners] in
            let began = Instant.current
            var start = began
            while start - began < runners.inlineBudget, let job = handOff.claimNext() {
                let (completion, end) = await execute(job, startedAt: start, runners)
                if !handOff.offer(completion) { report(completion, to: runners) }
                start = end
            }
            runners.queue.giveBack(runner)
        }
    }

    /// The jobs of one inline run, shared by the task running them and the loop: while the task
    /// runs on the loop's thread it claims job after job and leaves their completions here; once
    /// the loop moves on (the task suspended, or it stopped), the loop takes what finished and
    /// what never started, and the task reports anything later through the completion queue.
    final class InlineHandOff: Sendable {
        private struct State {
            var jobs: [Accepted]
            var next = 0
            var finished: [Completion] = []
            var loopMovedOn = false
        }

        private let state: Mutex<State>

        init(_ jobs: [Accepted]) { state = Mutex(State(jobs: jobs)) }

        /// The task's side: the next job to run, nil once the loop moved on.
        func claimNext() -> Accepted? {
            state.withLock { state in
                guard !state.loopMovedOn, state.next < state.jobs.count else { return nil }
                defer { state.next += 1 }
                return state.jobs[state.next]
            }
        }

        /// The task's side: true when the loop will take `completion` itself.
        func offer(_ completion: Completion) -> Bool {
            state.withLock { state in
                guard !state.loopMovedOn else { return false }
                state.finished.append(completion)
                return true
            }
        }

        /// The loop's side, once the task returned control: the completions so far and the jobs
        /// no one started, which the loop hands to the runners.
        func loopMovesOn() -> (finished: [Completion], notStarted: ArraySlice<Accepted>) {
            state.withLock { state in
                state.loopMovedOn = true
                defer { state.jobs = [] }
                return (state.finished, state.jobs[state.next...])
            }
        }
    }
}
