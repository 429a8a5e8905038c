import Logging
import ZMQ

/// Direct mode at the client: routing to the workers that can run a job, and following the
/// sink's membership list (docs/PROTOCOL.md, sections 5.6 and 5.8).
extension ClientLoop {
    /// Direct mode: no linked worker has `job`'s handler and labels. It ends `noWorkers` at once
    /// with a message naming what is missing, unless `client.wait_for_workers` lets it wait
    /// (parked until the membership changes, up to its deadline).
    func unroutable(_ job: Submission) {
        if topology.client.waitForWorkers {
            pending.parkNext()
            return
        }
        guard let entry = pending.finish(job.jobID) else { return }
        stats.unroutable += 1
        end(entry.submission.promise, .failure(JobError(.noWorkers, RouteMessage.missing(
            handler: job.handler, requires: job.options.requires, handlers: links.handlersOffered, labels: links.labelsOffered))))
    }

    /// Sends `frames` to the first worker of `eligible` in send order that takes them; returns
    /// its link id, or nil when none can take a message now.
    func send(_ frames: [[UInt8]], among eligible: [WorkerLinks.Link]) -> UInt32? {
        for link in links.sendOrder(after: lastLink, among: eligible) where fullLinks.isEmpty || !fullLinks.contains(link.id) {
            do {
                if try link.socket.trySend(multipart: frames) { return link.id }
            } catch {
                logger.error("sending jobs failed", metadata: ["endpoint": "\(link.endpoint)", "error": "\(error)"])
            }
            fullLinks.insert(link.id)  // it takes nothing more in this pass
        }
        return nil
    }

    func apply(_ members: MembersMessage) {
        guard members.epoch != membersEpoch, !members.unchanged else { return }
        membersEpoch = members.epoch
        let wanted = Dictionary(members.members.map { ($0.endpoint, $0) }, uniquingKeysWith: { a, _ in a })
        for endpoint in links.keepOnly(Set(wanted.keys)) {
            logger.debug("stopped sending to worker", metadata: ["endpoint": "\(endpoint)"])
        }
        defer {
            pending.unparkAll()  // what no worker could run may have a worker now
            core.workerCapabilities.publish(links.links.map(\.capabilities))
        }
        for (endpoint, member) in wanted where links.contains(endpoint: endpoint) {
            links.update(endpoint: endpoint, capabilities: member.capabilities)
        }
        for (endpoint, member) in wanted where !links.contains(endpoint: endpoint) {
            do {
                // Each worker is a CURVE server with its own key.
                var serverKey: [UInt8]?
                if sockets.security != nil {
                    guard member.publicKey.count == 32 else {
                        logger.warning("skipped a worker that announced no CURVE key", metadata: ["endpoint": "\(endpoint)"])
                        continue
                    }
                    serverKey = member.publicKey
                }
                let socket = try sockets.makeClient(.push, serverKey: serverKey)
                do {
                    try socket.connect(endpoint)
                } catch {
                    socket.close()
                    throw error
                }
                links.add(workerID: member.workerID, endpoint: endpoint, socket: socket, capabilities: member.capabilities)
                logger.debug("sending to worker", metadata: ["endpoint": "\(endpoint)"])
            } catch {
                logger.warning("cannot connect to advertised worker endpoint", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
            }
        }
    }
}
