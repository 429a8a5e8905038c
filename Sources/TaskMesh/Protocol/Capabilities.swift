/// What a worker can run: the handler names it serves and the labels it carries
/// (docs/PROTOCOL.md, "Capabilities"). Carried at the end of ANNOUNCE and READY, and per member
/// in MEMBERS, so clients (direct mode) and the broker (reliable mode) send a job only to a
/// worker that has its handler and every label it requires.
struct Capabilities: Equatable, Hashable, Sendable {
    /// The handler names, sorted; nil for a worker that advertised none (a peer from before
    /// capabilities): it is treated as serving every handler, as before.
    var handlers: [String]?
    /// The labels, sorted.
    var labels: [String]

    /// A peer that advertised nothing: may run any job that requires no label.
    static let unknown = Capabilities(handlers: nil, labels: [])

    init(handlers: [String]?, labels: [String]) {
        self.handlers = handlers.map(Self.canonical)
        self.labels = Self.canonical(labels)
    }

    /// Names sorted by their UTF-8 bytes, without repeats: the one order the wire allows.
    static func canonical(_ names: [String]) -> [String] {
        Array(Set(names)).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Reads `count` names, each 1 to 255 UTF-8 bytes, in strictly increasing byte order.
    static func readNames(_ r: inout ByteReader, count: Int, _ what: String) throws(ProtocolViolation) -> [String] {
        var names: [String] = []
        names.reserveCapacity(count)
        for _ in 0..<count {
            let name = try r.text(what)
            if let last = names.last, !last.utf8.lexicographicallyPrecedes(name.utf8) {
                throw ProtocolViolation(.order, "\(what) \"\(name)\" after \"\(last)\"")
            }
            names.append(name)
        }
        return names
    }

    /// Whether a job for `handler` requiring `required` may go to this worker.
    func canRun(_ handler: String, requiring required: [String]) -> Bool {
        if let handlers, !handlers.contains(handler) { return false }
        return required.allSatisfy(labels.contains)
    }

    /// Most handler names one worker advertises.
    static let maxHandlers = 4096
    /// Most labels one worker advertises, and most labels one job may require.
    static let maxLabels = 32

    /// The handler count that stands for "not advertised" inside a MEMBERS capability table.
    static let unknownHandlerCount: UInt16 = 0xFFFF

    /// Appends `u16 count, count × short handler, u8 count, count × short label`; an unknown
    /// handler list is written as the count 0xFFFF and no names.
    func encode(into w: inout ByteWriter) {
        let handlers = self.handlers ?? []
        w.u16(self.handlers == nil ? Self.unknownHandlerCount : UInt16(handlers.count))
        for name in handlers { w.short(name) }
        w.u8(UInt8(labels.count))
        for label in labels { w.short(label) }
    }

    /// The bytes `encode(into:)` writes.
    var encodedSize: Int {
        3 + (handlers ?? []).reduce(0) { $0 + 1 + $1.utf8.count } + labels.reduce(0) { $0 + 1 + $1.utf8.count }
    }

    /// Reads what `encode(into:)` wrote; `.unknown` when the reader is at its end (an older peer).
    static func decode(_ r: inout ByteReader) throws(ProtocolViolation) -> Capabilities {
        if r.isAtEnd { return .unknown }
        let rawCount = try r.u16()
        if rawCount == unknownHandlerCount { return Capabilities(handlers: nil, labels: try readLabels(&r)) }
        let handlerCount = Int(rawCount)
        guard handlerCount <= maxHandlers else { throw ProtocolViolation(.tooMany, "\(handlerCount) handlers") }
        let handlers = try readNames(&r, count: handlerCount, "handler name")
        let labels = try readLabels(&r)
        return Capabilities(handlers: handlers, labels: labels)
    }

    /// Reads `u8 count, count × short label` (1 to 255 UTF-8 bytes each, at most `maxLabels`,
    /// in strictly increasing byte order).
    static func readLabels(_ r: inout ByteReader) throws(ProtocolViolation) -> [String] {
        let count = Int(try r.u8())
        guard count <= maxLabels else { throw ProtocolViolation(.tooMany, "\(count) labels") }
        return try readNames(&r, count: count, "label")
    }
}

/// What a job asks of its dispatch beyond its handler: a priority and the labels a worker must
/// carry to run it. Carried from a client to the broker (reliable mode; docs/PROTOCOL.md,
/// "Job options"); in direct mode the client routes by them itself and sends none.
struct DispatchOptions: Equatable, Hashable, Sendable {
    /// 1 (lowest) to 9 (highest); `JobPriority.default` (5) unless set.
    var priority: UInt8
    /// nil for none: the standard options hold no reference, so the jobs that carry them
    /// (nearly all) copy no reference count for them on their way.
    private var labels: [String]?
    /// Sorted, without repeats.
    var requires: [String] {
        get { labels ?? [] }
        set { labels = newValue.isEmpty ? nil : newValue }
    }

    static func == (a: DispatchOptions, b: DispatchOptions) -> Bool { a.priority == b.priority && a.requires == b.requires }
    func hash(into hasher: inout Hasher) {
        hasher.combine(priority)
        hasher.combine(requires)
    }

    static let standard = DispatchOptions(priority: JobPriority.default.value, requires: [])

    init(priority: UInt8, requires: [String]) {
        self.priority = priority
        self.labels = requires.isEmpty ? nil : Capabilities.canonical(requires)
    }

    /// For labels already in canonical order (read from the wire, which checks it).
    private init(priority: UInt8, canonical requires: [String]) {
        self.priority = priority
        self.labels = requires.isEmpty ? nil : requires
    }

    var isStandard: Bool { priority == JobPriority.default.value && labels == nil }

    /// Appends `u8 priority, u8 count, count × short label`.
    func encode(into w: inout ByteWriter) {
        w.u8(priority)
        w.u8(UInt8(requires.count))
        for label in requires { w.short(label) }
    }

    var encodedSize: Int { 2 + requires.reduce(0) { $0 + 1 + $1.utf8.count } }

    /// Reads what `encode(into:)` wrote; a priority outside 1...9 is malformed.
    static func decode(_ r: inout ByteReader) throws(ProtocolViolation) -> DispatchOptions {
        let priority = try r.u8()
        guard JobPriority.range.contains(Int(priority)) else { throw ProtocolViolation(.range, "priority \(priority)") }
        let requires = try Capabilities.readLabels(&r)
        if requires.isEmpty && priority == JobPriority.default.value { return .standard }
        return DispatchOptions(priority: priority, canonical: requires)
    }
}
