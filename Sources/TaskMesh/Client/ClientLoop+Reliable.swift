/// Reliable mode at the client: the broker's heartbeats, and sending again what a lost or
/// replaced broker may have lost (docs/PROTOCOL.md, section 6.2).
extension ClientLoop {
    /// Reliable mode: a heartbeat from the broker. A broker that was silent for the liveness
    /// period, or that is a new instance, may have lost the jobs it held: send them again.
    func brokerSpoke(_ heartbeat: HeartbeatMessage) {
        let now = Instant.current
        let wasLost = brokerHeardAt.map { now - $0 > topology.heartbeat.expiry } ?? false
        let replaced = brokerInstance.map { $0 != heartbeat.instance } ?? false
        brokerHeardAt = now
        brokerInstance = heartbeat.instance
        brokerWorkers = Int(heartbeat.workers)
        if wasLost || replaced {
            let count = pending.requeueAllSent()
            stats.resent += UInt64(count)
            if count > 0 { logger.info("broker came back; sending unanswered jobs again", metadata: ["jobs": "\(count)"]) }
        }
    }
}
