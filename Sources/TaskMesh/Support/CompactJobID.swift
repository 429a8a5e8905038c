/// A job id as a dictionary key. Ids of up to 32 bytes (a client's own job ids are 8, a broker's
/// client-and-job key 25) are held inline, so hashing, comparing and copying them touch no heap
/// and no reference count; longer ids keep their bytes alongside.
struct CompactJobID: Hashable, Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private let count: UInt8
    private let spill: [UInt8]?

    static let inlineCapacity = 32

    init(_ bytes: [UInt8]) {
        count = UInt8(truncatingIfNeeded: bytes.count)
        if bytes.count <= Self.inlineCapacity {
            spill = nil
            withUnsafeMutableBytes(of: &words) { raw in
                bytes.withUnsafeBytes { raw.copyMemory(from: $0) }
            }
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
        a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
            && a.words.3 == b.words.3 && a.spill == b.spill
    }

    func hash(into hasher: inout Hasher) {
        if let spill {
            spill.withUnsafeBytes { hasher.combine(bytes: $0) }
        } else {
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(words.3)
            hasher.combine(count)
        }
    }
}
