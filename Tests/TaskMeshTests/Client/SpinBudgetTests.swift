import Foundation
import Synchronization
import Testing
@testable import TaskMesh

/// How long a caller spins for its outcome before it suspends (ClientCore).
@Suite struct SpinBudgetTests {
    @Test func aCallerSpinsOnlyForItsClientsOnlyPendingJob() throws {
        let core = try ClientCore(clientID: [1], spinWait: .microseconds(300))
        #expect(core.spinBudget == .zero)  // nothing pending: nothing to wait for
        core.pendingCount.add(1, ordering: .relaxed)
        #expect(core.spinBudget == .microseconds(300))
        core.pendingCount.add(1, ordering: .relaxed)
        #expect(core.spinBudget == .zero)
    }

    @Test func oneProcessorNeverSpinsAndNoSpinExceedsTheCap() {
        #expect(ClientCore.spinWait(configured: .microseconds(300), processors: 1) == .zero)
        #expect(ClientCore.spinWait(configured: .microseconds(300), processors: 2) == .microseconds(300))
        #expect(ClientCore.spinWait(configured: .seconds(3600), processors: 2) == Topology.Client.maximumSpinWait)
    }

    @Test func zeroTurnsTheSpinOff() throws {
        let core = try ClientCore(clientID: [1], spinWait: .zero)
        core.pendingCount.add(1, ordering: .relaxed)
        #expect(core.spinBudget == .zero)
    }
}
