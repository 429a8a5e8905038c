import ZMQ

/// Creates sockets tuned by a topology: its high-water marks, a frame limit just above
/// `limits.max_payload`, and ZMTP heartbeats at the topology's interval so dead TCP peers are
/// noticed even while no data flows.
struct SocketFactory: Sendable {
    let context: Context
    let topology: Topology
    /// This process's keys when the topology is secure; nil for plaintext.
    var security: RoleSecurity? = nil

    /// Room for a header frame beside the largest payload.
    static let headerAllowance = 64 * 1024

    func make(_ type: SocketType, immediate: Bool = true) throws(ZMQError) -> Socket {
        var defaults = SocketDefaults.standard
        defaults.sendHighWaterMark = Int32(clamping: topology.limits.sendHighWaterMark)
        defaults.receiveHighWaterMark = Int32(clamping: topology.limits.receiveHighWaterMark)
        defaults.maxMessageSize = Int64(topology.limits.maxPayload + Self.headerAllowance)
        defaults.immediate = immediate
        let socket = try Socket(context, type, defaults: defaults)
        try socket.set(.heartbeatInterval, topology.heartbeat.interval)
        try socket.set(.heartbeatTimeout, topology.heartbeat.expiry)
        try socket.set(.heartbeatTTL, topology.heartbeat.expiry)
        return socket
    }
}
