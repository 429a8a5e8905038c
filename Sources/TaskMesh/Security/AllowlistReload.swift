import Logging

/// Reloads a server's allowlists from the files its topology names (`taskmesh` does it on
/// SIGHUP). Every handshake from then on is checked against the new lists, so a removed key
/// cannot connect again. Connections it already has stay up until they end: restart the server
/// to cut them (docs/SECURITY.md, "Rotating keys").
func reloadAllowlists(topology: Topology, authenticator: ZAPAuthenticator?, logger: Logger) throws {
    guard let authenticator else { return }
    let lists = try RoleSecurity.currentAllowlists(topology)
    let removed = authenticator.replace(lists)
    logger.info("allowlists reloaded", metadata: [
        "clients": "\(lists[.clients]?.count ?? 0)", "workers": "\(lists[.workers]?.count ?? 0)", "removed": "\(removed)",
    ])
    if removed {
        logger.warning("keys were removed: they cannot connect again, but their live connections stay up until the server restarts")
    }
}
