import Foundation
import Testing
@testable import TaskMesh

@Suite struct MemberListenerTests {
    @Test func aClientGetsTheFullListOnChangeAndEveryTenthBeat() {
        var listener = MemberListener(lastHeard: .current)
        #expect(listener.needsFullList(epoch: 1), "nothing sent yet")
        listener.sentFull(epoch: 1)
        for _ in 0..<(MemberListener.refreshEvery - 1) {  // then the 10th beat carries the full list
            #expect(!listener.needsFullList(epoch: 1))
            listener.sentUnchanged()
        }
        #expect(listener.needsFullList(epoch: 1), "the periodic refresh")
        listener.sentFull(epoch: 1)
        #expect(listener.needsFullList(epoch: 2), "the list changed")
    }
}
