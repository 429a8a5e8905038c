import Foundation
import Synchronization
import Testing
@testable import TaskMesh

struct ExpiryQueueTests {
    @Test func itemsComeOutEarliestFirstWhateverTheInsertionOrder() {
        var random = SplitMix64(seed: 7)
        let t0 = Instant.current
        var queue = ExpiryQueue<Int>()
        var expected: [Int] = []
        // Mostly in order, as a client's default deadlines are, with some earlier ones mixed in.
        for key in 0..<5000 {
            let offset = random.next() % 10 == 0 ? Int(random.next() % 5000) : key
            queue.insert(at: t0 + .milliseconds(offset), key: key)
            expected.append(offset)
        }
        #expect(queue.count == 5000)
        var out: [Int] = []
        while let item = queue.removeFirst() {
            out.append(Int(((item.at - t0) / .milliseconds(1)).rounded()))
        }
        #expect(out == expected.sorted())
        #expect(queue.first == nil)
        let rebuilt = ExpiryQueue((0..<100).reversed().map { ExpiryQueue<Int>.Item(at: t0 + .milliseconds($0), key: $0) })
        #expect(rebuilt.first?.key == 0)
    }
}
