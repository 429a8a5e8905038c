/// One socket of a hub as the file gives it: what `TopologyDecoder` completes with the mode's
/// defaults and checks against each other.
struct HubSocketDraft: Sendable {
    var bind: TopologyEndpoint?
    var endpoint: TopologyEndpoint?
}

extension TopologySchema {
    /// The cells of a socket's `bind` and `endpoint` rows: default, constraints, meaning.
    typealias SocketRow = (defaultValue: String, constraints: String, meaning: String)

    /// A hub socket's section (`sink.results`, `broker.clients`, ...): where it binds, how others reach it.
    static func socket(_ path: String, bind: SocketRow, endpoint: SocketRow) -> TopologySectionSpec<HubSocketDraft> {
        TopologySectionSpec(path, [
            TopologyField("bind", type: "endpoint", default: bind.defaultValue, constraints: bind.constraints,
                          meaning: bind.meaning) { section, context, draft throws(TopologyError) in
                guard let given = try section.endpoint("bind") else { return }
                try context.checkTransport(given, section, "bind")
                draft.bind = given
            },
            TopologyField("endpoint", type: "endpoint", default: endpoint.defaultValue, constraints: endpoint.constraints,
                          meaning: endpoint.meaning) { section, context, draft throws(TopologyError) in
                guard let given = try section.endpoint("endpoint") else { return }
                try context.checkTransport(given, section, "endpoint")
                draft.endpoint = given
            },
        ])
    }

    static func readMode(_ top: TopologySection) throws(TopologyError) -> Topology.Mode {
        let names = Topology.Mode.allCases.map(\.rawValue)
        let choices = "local, direct or reliable"
        guard let value = top.value("mode") else {
            throw top.error("mode", "missing required field (\(choices))")
        }
        if case .string(let text) = value, let mode = Topology.Mode(rawValue: text) {
            return mode
        }
        let hint = value.scalarText.flatMap { FieldSuggestion.closest(to: $0, among: names) }.map { " (did you mean \"\($0)\"?)" } ?? ""
        throw top.error("mode", "expected \(choices), got \(value.rendered)\(hint)")
    }

    static func checkAdvertiseHost(_ host: String, _ section: TopologySection) throws(TopologyError) {
        let key = "advertise_host"
        let got = ", got \"\(host)\""
        if host.isEmpty || host.contains(where: { $0 == " " || $0 == "\t" || $0.isNewline || $0 == "/" }) {
            throw section.error(key, "expected a host name or address such as \"192.0.2.21\"" + got)
        }
        if ["*", "0.0.0.0", "::", "[::]"].contains(host) {
            throw section.error(key, "must be an address that other hosts can reach, not a wildcard" + got)
        }
        let colons = host.filter { $0 == ":" }.count
        if !host.hasPrefix("[") && colons == 1 {
            throw section.error(key, "is a host name or address without a port (the port comes from worker.bind)" + got)
        }
        if !host.hasPrefix("[") && colons > 1 {
            throw section.error(key, "an IPv6 address is written in brackets, such as \"[2001:db8::21]\"" + got)
        }
        if host.hasPrefix("[") != host.hasSuffix("]") {
            throw section.error(key, "expected a host name or address such as \"192.0.2.21\"" + got)
        }
    }
}

extension TopologyContext {
    /// Refuses a transport the mode cannot use: local mode is inproc only; the others never inproc.
    func checkTransport(_ endpoint: TopologyEndpoint, _ section: TopologySection, _ key: String) throws(TopologyError) {
        switch mode {
        case .local where endpoint.transport != .inproc:
            throw section.error(key, "mode local runs in one process and uses inproc:// endpoints only, got \"\(endpoint.text)\"")
        case .direct where endpoint.transport == .inproc, .reliable where endpoint.transport == .inproc:
            throw section.error(key, "mode \(mode.rawValue) runs across processes and cannot use inproc:// (use tcp:// or ipc://), got \"\(endpoint.text)\"")
        default:
            return
        }
    }
}
