/// A map from job ids to slot numbers, made for the id a client gives its own jobs: 8 bytes.
/// Those are held in an open-addressing table keyed by the id read as one integer, found with a
/// multiply and a shift, so adding, finding and removing them hashes no bytes and allocates
/// nothing per job. Ids of any other length go to a dictionary.
struct JobIndex {
    private var table = IntegerKeyTable()
    private var others: [CompactJobID: Int32] = [:]

    var count: Int { table.count + others.count }
    var isEmpty: Bool { count == 0 }

    /// The slot of the job with this id, if any.
    subscript(id: [UInt8]) -> Int32? {
        if let key = Self.integerKey(id) { return table[key] }
        return others[CompactJobID(id)]
    }

    /// Records `slot` for `id`. Returns false (and changes nothing) when the id is present.
    mutating func insert(_ id: [UInt8], slot: Int32) -> Bool {
        if let key = Self.integerKey(id) { return table.insert(key, slot) }
        let key = CompactJobID(id)
        guard others[key] == nil else { return false }
        others[key] = slot
        return true
    }

    /// Removes `id` and returns its slot; nil when it was not present.
    mutating func remove(_ id: [UInt8]) -> Int32? {
        if let key = Self.integerKey(id) { return table.remove(key) }
        return others.removeValue(forKey: CompactJobID(id))
    }

    /// Every slot, in no particular order.
    var slots: [Int32] { table.values + Array(others.values) }

    mutating func removeAll() {
        table = IntegerKeyTable()
        others.removeAll()
    }

    private static func integerKey(_ id: [UInt8]) -> UInt64? {
        guard id.count == 8 else { return nil }
        return id.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
}

/// An open-addressing hash table from `UInt64` to `Int32` with linear probing and backward-shift
/// deletion (no tombstones, so lookups stay short however many keys come and go). It is at most
/// half full, and shrinks when it falls below an eighth, so its memory follows its contents.
struct IntegerKeyTable {
    private struct Bucket {
        var key: UInt64
        /// -1: empty.
        var value: Int32
    }

    private var buckets: [Bucket] = []
    private var shift: UInt64 = 64
    private(set) var count = 0

    private static let minimumCapacity = 16

    private var mask: Int { buckets.count - 1 }

    /// How many buckets the table holds.
    var capacity: Int { buckets.count }

    /// Fibonacci hashing: the top bits of the key times 2^64 / golden ratio.
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The bucket holding `key`, or the empty one where it would go.
    private func find(_ key: UInt64) -> (bucket: Int, found: Bool) {
        var i = home(key)
        while true {
            let bucket = buckets[i]
            if bucket.value < 0 { return (i, false) }
            if bucket.key == key { return (i, true) }
            i = (i + 1) & mask
        }
    }

    subscript(key: UInt64) -> Int32? {
        guard count > 0 else { return nil }
        let (i, found) = find(key)
        return found ? buckets[i].value : nil
    }

    /// Adds `key` → `value` (`value` ≥ 0). Returns false (and changes nothing) when the key is present.
    mutating func insert(_ key: UInt64, _ value: Int32) -> Bool {
        precondition(value >= 0, "IntegerKeyTable values are non-negative")
        if (count + 1) * 2 > buckets.count { resize(to: max(Self.minimumCapacity, buckets.count * 2)) }
        let (i, found) = find(key)
        guard !found else { return false }
        buckets[i] = Bucket(key: key, value: value)
        count += 1
        return true
    }

    /// Removes `key` and returns its value; nil when it was not present.
    mutating func remove(_ key: UInt64) -> Int32? {
        guard count > 0 else { return nil }
        let (found, present) = find(key)
        guard present else { return nil }
        let value = buckets[found].value
        // Move later entries of the probe run back into the hole, unless that would put one
        // before its home bucket.
        var hole = found
        var next = (found + 1) & mask
        while buckets[next].value >= 0 {
            let distanceFromHome = (next - home(buckets[next].key)) & mask
            if distanceFromHome >= (next - hole) & mask {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole].value = -1
        count -= 1
        if buckets.count > 1024 && count * 8 < buckets.count { resize(to: buckets.count / 4) }
        return value
    }

    /// Every value, in no particular order.
    var values: [Int32] { buckets.compactMap { $0.value >= 0 ? $0.value : nil } }

    private mutating func resize(to capacity: Int) {
        let old = buckets
        buckets = Array(repeating: Bucket(key: 0, value: -1), count: capacity)
        shift = UInt64(64 - capacity.trailingZeroBitCount)
        for bucket in old where bucket.value >= 0 {
            let (i, _) = find(bucket.key)
            buckets[i] = bucket
        }
    }
}
