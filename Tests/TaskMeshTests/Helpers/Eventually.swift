import Testing

/// Waits until `condition` holds, checking every few milliseconds, and fails the test when
/// `timeout` passes first, describing `what` as it is then. For conditions that have no event
/// to await.
func eventually(_ what: @autoclosure () -> String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while try await !condition() {
        guard clock.now < deadline else {
            let what = what()
            Issue.record("timed out after \(timeout) waiting until \(what)")
            throw EventuallyTimeout(what: what)
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

struct EventuallyTimeout: Error {
    let what: String
}
