import Foundation
import Synchronization

/// Records when a condition first holds, checked every millisecond on a dedicated OS thread.
///
/// Awaiting a future measures the test task's scheduling as well as the code under test: on a
/// loaded two-core machine the test process's cooperative threads can be busy for seconds. A
/// plain thread polling a thread-safe snapshot (such as `Client.stats`) sees the moment the
/// client's own loop made the condition true, give or take a millisecond of polling.
final class ConditionClock: Sendable {
    private let firstHeld = Mutex<ContinuousClock.Instant?>(nil)
    private let stopped = Atomic<Bool>(false)

    init(until limit: Duration, _ condition: @escaping @Sendable () -> Bool) {
        let clock = ContinuousClock()
        let end = clock.now + limit
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed), clock.now < end {
                if condition() {
                    firstHeld.withLock { $0 = clock.now }
                    return
                }
                usleep(1000)
            }
        }
    }

    /// When the condition first held, or nil when it had not by the limit (or yet).
    var instant: ContinuousClock.Instant? { firstHeld.withLock { $0 } }

    deinit { stopped.store(true, ordering: .relaxed) }
}
