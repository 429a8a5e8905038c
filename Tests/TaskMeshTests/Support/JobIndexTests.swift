import Testing
@testable import TaskMesh

// The map from job ids to slots that clients and the broker use (Support/JobIndex.swift), checked step by step against a
// plain dictionary.

@Suite struct JobIndexTests {
    /// Random inserts and removals of 8-byte ids (the integer table) and ids of other lengths
    /// (the dictionary) agree with a dictionary after every step, through growth, shrinking and
    /// long probe runs.
    @Test(arguments: [1, 2, 3])
    func agreesWithADictionaryStepByStep(seed: UInt64) async {
        var random = SplitMix64(seed: seed)
        var index = JobIndex()
        var model: [[UInt8]: Int32] = [:]
        // Few distinct ids so that removals hit; lengths 8 (mostly) and 1...12 otherwise.
        let universe: [[UInt8]] = (0..<3000).map { n in
            let length = n % 5 == 0 ? 1 + n % 12 : 8
            return (0..<length).map { UInt8(truncatingIfNeeded: (n * 7919) >> ($0 % 4 * 4)) ^ UInt8($0) }
        }
        for step in 0..<60_000 {
            await yieldingNowAndThen(step)
            // Phases: grow towards the universe, then drain, so the table both grows and shrinks.
            let adding = (step / 15_000) % 2 == 0 ? random.next() % 4 != 0 : random.next() % 4 == 0
            let id = universe[Int(random.next() % UInt64(universe.count))]
            if adding {
                let slot = Int32(step)
                let inserted = index.insert(id, slot: slot)
                #expect(inserted == (model[id] == nil), "step \(step)")
                if model[id] == nil { model[id] = slot }
            } else {
                let removed = index.remove(id)
                #expect(removed == model.removeValue(forKey: id), "step \(step)")
            }
            #expect(index.count == model.count)
            if step % 997 == 0 {
                for known in universe { #expect(index[known] == model[known], "step \(step)") }
                #expect(index.slots.sorted() == model.values.sorted())
            }
        }
    }

    @Test func sequentialCounterIdsAllFindTheirSlots() {
        var index = JobIndex()
        let ids = (0..<50_000).map { n in withUnsafeBytes(of: UInt64(n).bigEndian) { Array($0) } }
        // One expectation per phase, naming the first id that broke it: tens of thousands of
        // expectations would keep a cooperative thread busy for a second in a debug build.
        let notInserted = ids.enumerated().first { n, id in !index.insert(id, slot: Int32(n)) }?.offset
        #expect(notInserted == nil, "id \(notInserted ?? -1) was refused")
        let wrongRemoval = ids.enumerated().first { n, id in n % 3 == 0 && index.remove(id) != Int32(n) }?.offset
        #expect(wrongRemoval == nil, "removing id \(wrongRemoval ?? -1) gave the wrong slot")
        let wrongSlot = ids.enumerated().first { n, id in index[id] != (n % 3 == 0 ? nil : Int32(n)) }?.offset
        #expect(wrongSlot == nil, "id \(wrongSlot ?? -1) has the wrong slot")
        #expect(index.count == 50_000 - 16_667)
    }

    /// A client's ids are a counter and its pending jobs a sliding window of it: however far the
    /// window slides, every id sits in its home bucket.
    @Test func aSlidingWindowOfCounterIdsNeverCollides() async {
        var table = IntegerKeyTable()
        let window: UInt64 = 10_000
        var worst = 0
        for key in UInt64(1)...300_000 {
            await yieldingNowAndThen(Int(key), every: 1000)
            _ = table.insert(key, Int32(truncatingIfNeeded: key))
            if key > window { _ = table.remove(key - window) }
            if key % 9_973 == 0 { worst = max(worst, table.longestDisplacement) }
        }
        #expect(table.count == Int(window))
        #expect(worst == 0)
    }

    @Test func idsThatDifferOnlyInTheirHighHalfSpread() {
        var table = IntegerKeyTable()
        for n in UInt64(0)..<4096 { _ = table.insert(n << 40, Int32(n)) }
        #expect(table.longestDisplacement < 64)
    }

    /// Ids sent by a peer (the broker indexes every client's ids) may be picked to share a home
    /// bucket under the counter-friendly function: multiples of the capacity. The table must
    /// notice the long probe run and switch to a seeded hash, and still find every key.
    @Test func keysPickedToCollideSwitchTheTableToASeededHash() {
        var table = IntegerKeyTable()
        let stride: UInt64 = 1 << 16  // no capacity reached here exceeds it, and the high half stays 0: one home for all
        for n in UInt64(0)..<20_000 { _ = table.insert(n * stride, Int32(n)) }
        #expect(table.isSeeded)
        #expect(table.longestDisplacement <= IntegerKeyTable.longestProbeAllowed * 2)
        #expect((UInt64(0)..<20_000).first { table[$0 * stride] != Int32($0) } == nil, "a key lost its slot")
        #expect((UInt64(0)..<19_990).first { table.remove($0 * stride) != Int32($0) } == nil, "a removal gave the wrong slot")
        #expect(table.count == 10)
        #expect((UInt64(19_990)..<20_000).first { table[$0 * stride] != Int32($0) } == nil, "a remaining key lost its slot")

        var counter = IntegerKeyTable()
        for key in UInt64(1)...100_000 { _ = counter.insert(key, Int32(key)) }
        #expect(!counter.isSeeded, "counter ids never probe far")
    }

    @Test func anAllZeroIdIsAnIdLikeAnyOther() {
        var index = JobIndex()
        let zero = [UInt8](repeating: 0, count: 8)
        #expect(index[zero] == nil)
        let first = index.insert(zero, slot: 0)
        let second = index.insert(zero, slot: 1)
        #expect(first && !second)
        #expect(index[zero] == 0)
        let removed = index.remove(zero)
        let removedAgain = index.remove(zero)
        #expect(removed == 0 && removedAgain == nil)
        #expect(index.isEmpty)
    }

    /// Consecutive keys sit at their homes, so each removal is quick; a deletion that scanned the
    /// whole run would not finish in the limit.
    @Test(.timeLimit(.minutes(1)))
    func emptyingTheTableGivesItsMemoryBack() {
        var table = IntegerKeyTable()
        for key in 0..<100_000 {
            let inserted = table.insert(UInt64(key), Int32(key))
            #expect(inserted)
        }
        for key in 0..<99_990 {
            let removed = table.remove(UInt64(key))
            #expect(removed == Int32(key))
        }
        #expect(table.count == 10)
        #expect(table.capacity <= 1024)
        for key in 99_990..<100_000 { #expect(table[UInt64(key)] == Int32(key)) }
    }
}
