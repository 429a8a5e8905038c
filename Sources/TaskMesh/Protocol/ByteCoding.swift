/// Appends big-endian fields to a header frame.
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func header(_ command: Wire.Command) {
        bytes.append(Wire.signature.0)
        bytes.append(Wire.signature.1)
        bytes.append(Wire.version)
        bytes.append(command.rawValue)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    /// A short byte string: one length byte, then the bytes. Callers guarantee count <= 255.
    mutating func short(_ value: [UInt8]) {
        bytes.append(UInt8(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func short(_ value: String) {
        let utf8 = value.utf8
        bytes.append(UInt8(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Bytes as they are, with no length before them.
    mutating func raw(_ value: [UInt8]) { bytes.append(contentsOf: value) }

    /// A long byte string: a `u32` length, then the bytes.
    mutating func long(_ value: [UInt8]) {
        u32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    /// Overwrites a `u16` written earlier at `offset` (a count known only at the end).
    mutating func patchU16(_ value: UInt16, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    var count: Int { bytes.count }
}

/// Reads big-endian fields from a received frame; every read is bounds-checked and throws
/// `ProtocolViolation` instead of trapping.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var isAtEnd: Bool { offset == bytes.count }

    /// Moves past `count` bytes; throws (and stays put) when fewer are left.
    mutating func skip(_ count: Int) throws(ProtocolViolation) {
        guard count <= bytes.count - offset else { throw ProtocolViolation(.truncated, "\(count) bytes to skip") }
        offset += count
    }

    /// Checks the signature and version and returns the command byte.
    static func command(of header: [UInt8]) throws(ProtocolViolation) -> Wire.Command {
        guard header.count >= 4 else { throw ProtocolViolation(.truncated, "header of \(header.count) bytes") }
        guard header[0] == Wire.signature.0, header[1] == Wire.signature.1 else {
            throw ProtocolViolation(.signature)
        }
        guard header[2] == Wire.version else { throw ProtocolViolation(.version, "version \(header[2])") }
        guard let command = Wire.Command(rawValue: header[3]) else {
            throw ProtocolViolation(.command, "command 0x\(String(header[3], radix: 16))")
        }
        return command
    }

    mutating func u8() throws(ProtocolViolation) -> UInt8 {
        guard offset < bytes.count else { throw ProtocolViolation(.truncated) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(ProtocolViolation) -> UInt16 {
        guard offset + 2 <= bytes.count else { throw ProtocolViolation(.truncated) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u32() throws(ProtocolViolation) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw ProtocolViolation(.truncated) }
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return value
    }

    mutating func u64() throws(ProtocolViolation) -> UInt64 {
        guard offset + 8 <= bytes.count else { throw ProtocolViolation(.truncated) }
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return value
    }

    /// A length-prefixed byte string (0 to 255 bytes).
    mutating func short() throws(ProtocolViolation) -> [UInt8] {
        Array(try shortInPlace())
    }

    /// A length-prefixed byte string (0 to 255 bytes), as a view of the bytes read.
    private mutating func shortInPlace() throws(ProtocolViolation) -> ArraySlice<UInt8> {
        let count = Int(try u8())
        guard offset + count <= bytes.count else { throw ProtocolViolation(.truncated) }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// A `u32`-length-prefixed byte string.
    mutating func long() throws(ProtocolViolation) -> [UInt8] {
        let count = Int(try u32())
        guard offset + count <= bytes.count else { throw ProtocolViolation(.truncated) }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A length-prefixed id: 1 to 255 bytes.
    mutating func id(_ what: String) throws(ProtocolViolation) -> [UInt8] {
        let value = try short()
        guard !value.isEmpty else { throw ProtocolViolation(.emptyID, what) }
        return value
    }

    /// A length-prefixed UTF-8 string.
    ///
    /// When the bytes spell `previous`, that string comes back as it is, neither copied nor
    /// validated again: consecutive jobs of a batch mostly name the same handler.
    mutating func text(_ what: String, allowEmpty: Bool = false, sameAs previous: String? = nil) throws(ProtocolViolation) -> String {
        let value = try shortInPlace()
        guard allowEmpty || !value.isEmpty else { throw ProtocolViolation(.emptyID, what) }
        if let previous, previous.utf8.count == value.count, previous.utf8.elementsEqual(value) { return previous }
        guard let text = String(validating: value, as: UTF8.self) else {
            throw ProtocolViolation(.invalidUTF8, what)
        }
        return text
    }

    /// Version 1 allows extension bytes after the known fields of a header; they are ignored, so a
    /// newer minor revision can add fields. Used where a message's field list is closed instead.
    func requireEnd() throws(ProtocolViolation) {
        guard isAtEnd else { throw ProtocolViolation(.trailing) }
    }
}
