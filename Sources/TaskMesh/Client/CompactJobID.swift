/// A job id as the client's bookkeeping key. Ids of up to 24 bytes (the client's own are 8, a
/// binary UUID 16) are held inline, so hashing, comparing and copying them touch no heap and
/// no reference count; longer ids keep their bytes alongside.
struct CompactJobID: Hashable, Sendable {
    private var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private let count: UInt8
    private let spill: [UInt8]?

    static let inlineCapacity = 24

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

    static func == (a: CompactJobID, b: CompactJobID) -> Bool {
        a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.spill == b.spill
    }

    func hash(into hasher: inout Hasher) {
        if let spill {
            spill.withUnsafeBytes { hasher.combine(bytes: $0) }
        } else {
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(count)
        }
    }
}
