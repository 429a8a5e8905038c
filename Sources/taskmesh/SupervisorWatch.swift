import Dispatch
import Foundation
import Logging
import Synchronization

/// A role started by `taskmesh up` (which sets `TASKMESH_SUPERVISOR_PID`) stops gracefully, as
/// on SIGTERM, once that process is no longer its parent: a supervisor killed with SIGKILL
/// cannot stop its children itself. Looks twice a second; does nothing for a role started
/// otherwise. Keep the returned source for as long as the role runs.
func stopWhenSupervisorIsGone(logger: Logger) -> (any DispatchSourceTimer)? {
    guard let text = ProcessInfo.processInfo.environment[Supervisor.pidVariable], let supervisor = Int32(text) else { return nil }
    let fired = Once()
    let timer = DispatchSource.makeTimerSource(queue: .global())
    timer.schedule(deadline: .now(), repeating: .milliseconds(500))
    timer.setEventHandler {
        guard getppid() != supervisor, fired.first() else { return }
        logger.warning("the taskmesh up that started this process is gone; stopping", metadata: ["supervisor": "\(supervisor)"])
        kill(getpid(), SIGTERM)
    }
    timer.resume()
    return timer
}

/// True the first time only.
private final class Once: Sendable {
    private let done = Atomic<Bool>(false)
    func first() -> Bool { !done.exchange(true, ordering: .acquiringAndReleasing) }
}
