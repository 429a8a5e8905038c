/// A map from job ids to slot numbers, made for the id a client gives its own jobs: 8 bytes.
/// Those are held in an open-addressing table keyed by the id read as one integer, found with a
/// multiply and a shift, so adding, finding and removing them hashes no bytes and allocates
/// nothing per job. Ids of any other length go to a dictionary. Safe for ids a peer chooses (the
/// broker keeps one per client): ids picked to collide switch the table to a seeded hash.
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

    /// Gives the present `id` the slot `slot` and returns its old one; nil (and no change) when
    /// it was not present.
    mutating func replace(_ id: [UInt8], with slot: Int32) -> Int32? {
        if let key = Self.integerKey(id) { return table.replace(key, with: slot) }
        let key = CompactJobID(id)
        guard let old = others[key] else { return nil }
        others[key] = slot
        return old
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
        // Read big-endian, so a counter's last byte is the key's lowest.
        return UInt64(bigEndian: id.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    }
}

/// An open-addressing hash table from `UInt64` to `Int32`: Robin Hood linear probing with
/// backward-shift deletion (no tombstones, so lookups stay short however many keys come and
/// go; removing one of a run of consecutive keys moves nothing). It is at most half full, and
/// shrinks when it falls below an eighth, so its memory follows its contents.
struct IntegerKeyTable {
    private struct Bucket {
        var key: UInt64
        /// -1: empty.
        var value: Int32
    }

    private var buckets: [Bucket] = []
    private(set) var count = 0
    /// Set once an insertion probed past `longestProbeAllowed`: from then on every key is
    /// hashed with this secret, so keys chosen to share a home (ids sent by a peer) cannot build
    /// long probe runs.
    private var seed: UInt64?

    private static let minimumCapacity = 16
    /// Farther than this from its home, an insertion switches the table to seeded hashing.
    /// Counter ids never come near it: their displacement stays 0.
    static let longestProbeAllowed = 32

    /// Whether the table has switched to seeded hashing (see `seed`).
    var isSeeded: Bool { seed != nil }

    private var mask: Int { buckets.count - 1 }

    /// How many buckets the table holds.
    var capacity: Int { buckets.count }

    /// The key's low bits, xor a Fibonacci hash of its high 32 bits. A client's own ids are a
    /// counter whose high half stays zero, so any run of them shorter than the table lands in
    /// distinct buckets, next to each other: no collisions and lookups that stay in cache. (A
    /// hash of all the bits would scatter them, and one that changed with the bits just above the
    /// mask would move each new run of ids onto the live one and make long probe runs.) Ids that
    /// differ only in their high half still spread. Keys picked to collide under this function
    /// (multiples of the capacity, say) make the table switch to a seeded hash of all the bits.
    private func home(_ key: UInt64) -> Int {
        if let seed {
            let product = (key ^ seed).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15 | 1)
            return Int(truncatingIfNeeded: product.high ^ product.low) & mask
        }
        let high = ((key >> 32) &* 0x9E37_79B9_7F4A_7C15) >> 32
        return Int(truncatingIfNeeded: key ^ high) & mask
    }

    /// How far `bucket` sits from its key's home.
    private func distance(_ bucket: Int) -> Int {
        (bucket - home(buckets[bucket].key)) & mask
    }

    /// The bucket holding `key`, if any. Robin Hood order lets a search stop at the first
    /// entry nearer its home than the key would be.
    private func find(_ key: UInt64) -> Int? {
        var i = home(key)
        var probed = 0
        while true {
            let bucket = buckets[i]
            if bucket.value < 0 || distance(i) < probed { return nil }
            if bucket.key == key { return i }
            i = (i + 1) & mask
            probed += 1
        }
    }

    subscript(key: UInt64) -> Int32? {
        guard count > 0, let i = find(key) else { return nil }
        return buckets[i].value
    }

    /// Adds `key` → `value` (`value` ≥ 0). Returns false (and changes nothing) when the key is present.
    mutating func insert(_ key: UInt64, _ value: Int32) -> Bool {
        precondition(value >= 0, "IntegerKeyTable values are non-negative")
        if count > 0, find(key) != nil { return false }
        if (count + 1) * 2 > buckets.count { resize(to: max(Self.minimumCapacity, buckets.count * 2)) }
        let probed = place(Bucket(key: key, value: value))
        count += 1
        if probed > Self.longestProbeAllowed && seed == nil {
            var random = SystemRandomNumberGenerator()
            seed = random.next()
            resize(to: buckets.count)
        }
        return true
    }

    /// Robin Hood insertion: an entry farther from its home takes the bucket of one nearer its
    /// own, which then moves on. Keeps every probe run ordered by home. Returns the longest
    /// distance probed.
    @discardableResult
    private mutating func place(_ entry: Bucket) -> Int {
        var carried = entry
        var i = home(carried.key)
        var probed = 0
        var longest = 0
        while buckets[i].value >= 0 {
            let resident = distance(i)
            if resident < probed {
                swap(&carried, &buckets[i])
                probed = resident
            }
            i = (i + 1) & mask
            probed += 1
            longest = max(longest, probed)
        }
        buckets[i] = carried
        return longest
    }

    /// Gives the present `key` the value `value` (≥ 0) and returns its old one; nil (and no
    /// change) when it was not present.
    mutating func replace(_ key: UInt64, with value: Int32) -> Int32? {
        precondition(value >= 0, "IntegerKeyTable values are non-negative")
        guard count > 0, let i = find(key) else { return nil }
        let old = buckets[i].value
        buckets[i].value = value
        return old
    }

    /// Removes `key` and returns its value; nil when it was not present.
    mutating func remove(_ key: UInt64) -> Int32? {
        guard count > 0, let found = find(key) else { return nil }
        let value = buckets[found].value
        // Backward shift: the entries after it move one bucket back, until an empty bucket or
        // one at its home.
        var hole = found
        var next = (found + 1) & mask
        while buckets[next].value >= 0 && distance(next) > 0 {
            buckets[hole] = buckets[next]
            hole = next
            next = (next + 1) & mask
        }
        buckets[hole].value = -1
        count -= 1
        if buckets.count > 1024 && count * 8 < buckets.count { resize(to: buckets.count / 4) }
        return value
    }

    /// The farthest any entry sits from its home bucket (0: every lookup hits at once).
    var longestDisplacement: Int {
        buckets.indices.lazy.filter { self.buckets[$0].value >= 0 }.map { self.distance($0) }.max() ?? 0
    }

    /// Every value, in no particular order.
    var values: [Int32] { buckets.compactMap { $0.value >= 0 ? $0.value : nil } }

    private mutating func resize(to capacity: Int) {
        let old = buckets
        buckets = Array(repeating: Bucket(key: 0, value: -1), count: capacity)
        for bucket in old where bucket.value >= 0 { place(bucket) }
    }
}
