/// A job id as a dictionary key. Ids of up to 32 bytes (a client's own job ids are 8, a broker's
/// client-and-job key 25) are held inline, so hashing, comparing and copying them touch no heap
/// and no reference count; longer ids keep their bytes alongside.
///
/// An inline id is folded into 64 bits once, when the key is made (a multiply-and-fold mix
/// seeded per process, so ids chosen to collide cannot be prepared in advance), and only those
/// 64 bits go through `Hasher`: a dictionary lookup hashes one word instead of five.
struct CompactJobID: Hashable, Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private let count: UInt8
    private let spill: [UInt8]?
    private var fingerprint: UInt64 = 0

    private static let seeds: (UInt64, UInt64) = {
        var random = SystemRandomNumberGenerator()
        return (random.next(), random.next())
    }()

    /// The high and low halves of the 128-bit product, folded.
    private static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    private static func fingerprint(of words: (UInt64, UInt64, UInt64, UInt64), count: UInt8) -> UInt64 {
        let seeds = Self.seeds
        let first = fold(words.0 ^ seeds.0, words.1 ^ 0xE703_7ED1_A0B4_28DB)
        let second = fold(words.2 ^ seeds.1, words.3 ^ UInt64(count) ^ 0x8EBC_6AF0_9C88_C6E3)
        return fold(first ^ 0x5899_65CC_7537_4CC3, second ^ seeds.0)
    }

    static let inlineCapacity = 32

    init(_ bytes: [UInt8]) {
        count = UInt8(truncatingIfNeeded: bytes.count)
        if bytes.count <= Self.inlineCapacity {
            spill = nil
            withUnsafeMutableBytes(of: &words) { raw in
                bytes.withUnsafeBytes { raw.copyMemory(from: $0) }
            }
            fingerprint = Self.fingerprint(of: words, count: count)
        } else {
            spill = bytes
        }
    }

    /// The key of `id` within `namespace`: the namespace's length, the namespace, then the id,
    /// so no two (namespace, id) pairs share a key.
    init(namespace: [UInt8], id: [UInt8]) {
        let total = 1 + namespace.count + id.count
        count = UInt8(truncatingIfNeeded: total)
        if total <= Self.inlineCapacity {
            spill = nil
            withUnsafeMutableBytes(of: &words) { raw in
                raw[0] = UInt8(truncatingIfNeeded: namespace.count)
                namespace.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[1...]).copyMemory(from: $0) }
                id.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[(1 + namespace.count)...]).copyMemory(from: $0) }
            }
            fingerprint = Self.fingerprint(of: words, count: count)
        } else {
            spill = [UInt8(truncatingIfNeeded: namespace.count)] + namespace + id
        }
    }

    /// The bytes the key was made of (for a namespaced key: the namespace's length, the
    /// namespace, then the id).
    var bytes: [UInt8] {
        if let spill { return spill }
        return withUnsafeBytes(of: words) { Array($0.prefix(Int(count))) }
    }

    static func == (a: CompactJobID, b: CompactJobID) -> Bool {
        a.fingerprint == b.fingerprint && a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
            && a.words.3 == b.words.3 && a.spill == b.spill
    }

    func hash(into hasher: inout Hasher) {
        if let spill {
            spill.withUnsafeBytes { hasher.combine(bytes: $0) }
        } else {
            hasher.combine(fingerprint)
        }
    }
}
