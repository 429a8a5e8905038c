/// Appends big-endian fields to a message (or to a body built on its own).
///
/// A message is written in order: `header(_:)`, the header's fields, `endHeader()` (or
/// `frame(body:)`, which ends the header and appends the body).
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Starts a message: the preamble, with its header length still to be filled in.
    mutating func header(_ command: Wire.Command) {
        bytes.append(Wire.signature.0)
        bytes.append(Wire.signature.1)
        bytes.append(Wire.version)
        bytes.append(command.rawValue)
        bytes.append(contentsOf: [0, 0, 0, 0] as [UInt8])
    }

    /// Ends the header: what was written so far is its length, recorded in the preamble.
    mutating func endHeader() {
        let length = UInt32(bytes.count)
        for (index, shift) in [24, 16, 8, 0].enumerated() {
            bytes[4 + index] = UInt8(truncatingIfNeeded: length >> UInt32(shift))
        }
    }

    /// The whole message: the header ended here, then `body`.
    consuming func frame(body: [UInt8] = []) -> [UInt8] {
        endHeader()
        bytes.append(contentsOf: body)
        return bytes
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

/// Reads big-endian fields from part of a received frame (`bytes[offset..<end]`); every read is
/// bounds-checked and throws `ProtocolViolation` instead of trapping.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset: Int
    private let end: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
        self.end = bytes.count
    }

    /// Reads `bytes[offset..<end]`; callers guarantee `offset <= end <= bytes.count`.
    init(_ bytes: [UInt8], offset: Int, end: Int) {
        self.bytes = bytes
        self.offset = offset
        self.end = end
    }

    var isAtEnd: Bool { offset == end }

    /// Moves past `count` bytes; throws (and stays put) when fewer are left.
    mutating func skip(_ count: Int) throws(ProtocolViolation) {
        guard count <= end - offset else { throw ProtocolViolation(.truncated, "\(count) bytes to skip") }
        offset += count
    }

    /// Checks a message's preamble (signature, version, a header length that fits the bytes
    /// given) and returns its command. `header` may be a prefix of the message, `count` bytes
    /// long in all.
    static func command(of header: [UInt8], count: Int? = nil) throws(ProtocolViolation) -> Wire.Command {
        guard header.count >= 4 else { throw ProtocolViolation(.truncated, "a message of \(header.count) bytes") }
        guard header[0] == Wire.signature.0, header[1] == Wire.signature.1 else {
            throw ProtocolViolation(.signature)
        }
        guard header[2] == Wire.version else { throw ProtocolViolation(.version, "version \(header[2])") }
        guard let command = Wire.Command(rawValue: header[3]) else {
            throw ProtocolViolation(.command, "command 0x\(String(header[3], radix: 16))")
        }
        _ = try headerLength(of: header, count: count ?? header.count)
        return command
    }

    /// The header length a preamble states, checked: at least the preamble, at most the message.
    static func headerLength(of header: [UInt8], count: Int) throws(ProtocolViolation) -> Int {
        guard header.count >= Wire.preambleSize else { throw ProtocolViolation(.truncated, "a message of \(header.count) bytes") }
        var length = 0
        for i in 4..<8 { length = length << 8 | Int(header[i]) }
        guard length >= Wire.preambleSize, length <= count else {
            throw ProtocolViolation(.truncated, "a header of \(length) bytes in a message of \(count)")
        }
        return length
    }

    mutating func u8() throws(ProtocolViolation) -> UInt8 {
        guard offset < end else { throw ProtocolViolation(.truncated) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(ProtocolViolation) -> UInt16 {
        guard offset + 2 <= end else { throw ProtocolViolation(.truncated) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u32() throws(ProtocolViolation) -> UInt32 {
        guard offset + 4 <= end else { throw ProtocolViolation(.truncated) }
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return value
    }

    mutating func u64() throws(ProtocolViolation) -> UInt64 {
        guard offset + 8 <= end else { throw ProtocolViolation(.truncated) }
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
        guard offset + count <= end else { throw ProtocolViolation(.truncated) }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// A `u32`-length-prefixed byte string.
    mutating func long() throws(ProtocolViolation) -> [UInt8] {
        let count = Int(try u32())
        guard offset + count <= end else { throw ProtocolViolation(.truncated) }
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

    /// Headers may carry extension bytes after their known fields; they are ignored, so a newer
    /// revision can add fields. Used where a field list is closed instead.
    func requireEnd() throws(ProtocolViolation) {
        guard isAtEnd else { throw ProtocolViolation(.trailing) }
    }
}

/// A received message whose preamble is valid: its command, a reader over its header's fields
/// and its body (docs/PROTOCOL.md, "Message framing").
struct ReceivedMessage: Equatable, Sendable {
    let frame: [UInt8]
    let command: Wire.Command
    /// Where the header ends and the body begins.
    let headerEnd: Int

    init(_ frame: [UInt8]) throws(ProtocolViolation) {
        command = try ByteReader.command(of: frame)
        headerEnd = try ByteReader.headerLength(of: frame, count: frame.count)
        self.frame = frame
    }

    /// Opens a message that must be an `expected`.
    init(_ frame: [UInt8], expecting expected: Wire.Command) throws(ProtocolViolation) {
        try self.init(frame)
        guard command == expected else { throw ProtocolViolation(.command, "expected \(expected)") }
    }

    /// A reader over the header's fields (after the preamble).
    var header: ByteReader { ByteReader(frame, offset: Wire.preambleSize, end: headerEnd) }
    /// A reader over the body.
    var bodyReader: ByteReader { ByteReader(frame, offset: headerEnd) }
    /// A copy of the body.
    var body: [UInt8] { headerEnd == frame.count ? [] : Array(frame[headerEnd...]) }
    var bodyCount: Int { frame.count - headerEnd }

    /// For the commands that define no body.
    func requireNoBody() throws(ProtocolViolation) {
        guard bodyCount == 0 else { throw ProtocolViolation(.trailing, "\(command) carries no body, got \(bodyCount) bytes") }
    }
}
