import ZMQ

/// Creates sockets tuned by a topology: its high-water marks, a frame limit just above
/// `limits.max_payload`, and ZMTP heartbeats at the topology's interval so dead TCP peers are
/// noticed even while no data flows.
///
/// The ZMTP heartbeat timeout is never below `zmtpTimeoutFloor`: a peer whose receive queue is
/// full stops reading its TCP stream, the PINGs queued in it included, so a timeout of a few
/// heartbeats would cut a connection that is merely back-pressured (a busy client) and lose what
/// was in flight on it. Liveness of workers and clients is the application heartbeats' job.
struct SocketFactory: Sendable {
    let context: Context
    let topology: Topology
    /// This process's keys when the topology is secure; nil for plaintext.
    var security: RoleSecurity? = nil

    static let zmtpTimeoutFloor: Duration = .seconds(30)

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
        let timeout = max(topology.heartbeat.expiry, Self.zmtpTimeoutFloor)
        try socket.set(.heartbeatTimeout, timeout)
        try socket.set(.heartbeatTTL, timeout)
        return socket
    }
}
