import Foundation
import Synchronization
import Testing
@testable import TaskMesh

struct CompactJobIDTests {
    @Test func equalBytesAreEqualKeysAndAnyDifferenceIsNot() {
        let ids: [[UInt8]] = [[], [0], [0, 0], [1], Array(repeating: 7, count: 32), Array(repeating: 7, count: 33),
                              Array(repeating: 7, count: 31) + [8], Array(repeating: 7, count: 32) + [8], Array("a-36-byte-uuid-string-0123456789abcd".utf8)]
        for (i, a) in ids.enumerated() {
            for (j, b) in ids.enumerated() {
                #expect((CompactJobID(a) == CompactJobID(b)) == (i == j), "\(a) vs \(b)")
            }
            #expect(CompactJobID(a) == CompactJobID(Array(a)))
            #expect(CompactJobID(a).hashValue == CompactJobID(Array(a)).hashValue)
        }
        #expect(Set(ids.map { CompactJobID($0) }).count == ids.count)
    }

    @Test func namespacedKeysNeverMixTheirParts() {
        let pairs: [([UInt8], [UInt8])] = [([1], [2, 3]), ([1, 2], [3]), ([], [1, 2, 3]), ([1, 2, 3], []),
                                           (Array(repeating: 9, count: 16), Array(repeating: 1, count: 8)),
                                           (Array(repeating: 9, count: 32), Array(repeating: 1, count: 8)),
                                           (Array(repeating: 9, count: 32), Array(repeating: 1, count: 9))]
        for (i, a) in pairs.enumerated() {
            for (j, b) in pairs.enumerated() {
                let same = CompactJobID(namespace: a.0, id: a.1) == CompactJobID(namespace: b.0, id: b.1)
                #expect(same == (i == j), "\(a) vs \(b)")
            }
            #expect(JobKey(clientID: a.0, jobID: a.1) == JobKey(clientID: Array(a.0), jobID: Array(a.1)))
            #expect(JobKey(clientID: a.0, jobID: a.1).hashValue == JobKey(clientID: Array(a.0), jobID: Array(a.1)).hashValue)
        }
    }
}
