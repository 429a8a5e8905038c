import Logging
import ZMQ

/// Direct and local mode at the client: a PUSH per live worker (`WorkerLinks`: each message
/// goes to the worker with the fewest unanswered jobs that can run it) and a DEALER connected
/// to the sink (results and membership in, HELLO heartbeats out; docs/PROTOCOL.md, sections
/// 5.6 and 5.8).
final class DirectTransport: ClientTransport {
    let topology: Topology
    let sockets: SocketFactory
    let logger: Logger
    /// The sink's DEALER: results and membership in.
    let inbound: Socket
    /// Where jobs go.
    var links: WorkerLinks
    var lastLink: UInt32 = 0
    /// The links that refused a message in the last send pass (their queue is full); the loop
    /// waits for them to become writable.
    var fullLinks = Set<UInt32>()
    var membersEpoch: UInt64?
    /// The poller index of the first link (links follow in `links.links` order).
    private var firstLinkIndex = 0

    init(core: ClientCore, topology: Topology, hub: Topology.Sink, sockets: SocketFactory, logger: Logger) throws {
        self.topology = topology
        self.sockets = sockets
        self.logger = logger
        inbound = try Self.connectHub(hub.clientsEndpoint, key: \.sinkKey, field: "security.servers.sink",
                                      core: core, sockets: sockets)
        links = WorkerLinks(leaveLinger: topology.worker.drainTimeout)
    }

    var workerCount: Int { links.count }
    var canSend: Bool { !links.isEmpty }
    var pollGeneration: Int { links.generation }

    func addPollItems(to poller: inout Poller) {
        firstLinkIndex = -1
        for link in links.links {
            let index = poller.add(link.socket, [])
            if firstLinkIndex < 0 { firstLinkIndex = index }
        }
    }

    func setInterest(in poller: inout Poller, inboundIndex: Int, jobsWaiting: Bool) {
        // Only the workers that were full have jobs waiting for them; an idle worker of another
        // handler must not wake the loop.
        for (offset, link) in links.links.enumerated() {
            let waitedFor = jobsWaiting && !fullLinks.isEmpty && fullLinks.contains(link.id)
            poller.setInterest(waitedFor ? .writable : [], at: firstLinkIndex + offset)
        }
    }

    /// Jobs that are waiting together leave together, as JOBS messages of one routing class
    /// (at most an even share per worker that can run them); a lone or large job leaves as a
    /// JOB. Each message goes to the worker with the fewest unanswered jobs that can take it.
    func sendJobs(_ loop: ClientLoop<DirectTransport>) {
        fullLinks.removeAll(keepingCapacity: true)
        while let job = loop.pending.nextToSend() {
            let route = WorkerLinks.RouteKey(handler: job.handler, requires: job.options.requires)
            var eligible = links.eligible(route)
            if job.avoidWorker != 0 && eligible.count > 1 {
                // A retry goes to another worker than the one it failed on, when there is one.
                eligible.removeAll { $0.id == job.avoidWorker }
            }
            if eligible.isEmpty {
                unroutable(job, loop)
                continue
            }
            // Every worker that can run it is full: hold it for this pass, so that jobs for
            // other workers behind it still leave; when every worker is full, nothing can.
            if !fullLinks.isEmpty && eligible.allSatisfy({ fullLinks.contains($0.id) }) {
                if fullLinks.count >= links.count { return }
                loop.pending.holdNext()
                continue
            }
            let (message, span, count) = loop.nextJobMessage(startingWith: job, destinations: eligible.count,
                                                             sameRoute: route, carryingOptions: false)
            guard let link = send(message, among: eligible) else {
                if fullLinks.count >= links.count { return }
                loop.pending.holdNext()
                continue
            }
            lastLink = link
            links.sent(count, to: link)
            loop.pending.markSent(span: span, to: link)
        }
    }

    /// No linked worker has `job`'s handler and labels. It ends `noWorkers` at once with a
    /// message naming what is missing, unless `client.wait_for_workers` lets it wait (parked
    /// until the membership changes, up to its deadline).
    private func unroutable(_ job: Submission, _ loop: ClientLoop<DirectTransport>) {
        if topology.client.waitForWorkers {
            loop.pending.parkNext()
            return
        }
        guard let entry = loop.pending.finish(job.jobID) else { return }
        loop.stats.unroutable += 1
        loop.end(entry.submission.promise, .failure(JobError(.noWorkers, RouteMessage.missing(
            handler: job.handler, requires: job.options.requires, handlers: links.handlersOffered, labels: links.labelsOffered))))
    }

    /// Sends `message` to the first worker of `eligible` in send order that takes it; returns
    /// its link id, or nil when none can take a message now.
    private func send(_ message: [UInt8], among eligible: [WorkerLinks.Link]) -> UInt32? {
        for link in links.sendOrder(after: lastLink, among: eligible) where fullLinks.isEmpty || !fullLinks.contains(link.id) {
            do {
                if try link.socket.trySend(message) { return link.id }
            } catch {
                logger.error("sending jobs failed", metadata: ["endpoint": "\(link.endpoint)", "error": "\(error)"])
            }
            fullLinks.insert(link.id)  // it takes nothing more in this pass
        }
        return nil
    }

    func receive(_ message: [UInt8], _ loop: ClientLoop<DirectTransport>) throws(ProtocolViolation) {
        switch try SinkToClient.decode(message) {
        case .result(let result): loop.handle(result)
        case .results(let batch): loop.handle(batch)
        case .members(let members): apply(members, loop)
        case .progress(let progress): loop.handle(progress)
        }
    }

    func intercept(_ result: ResultMessage, _ loop: ClientLoop<DirectTransport>) -> Bool {
        switch result.status {
        case .retry:
            guard let entry = loop.pending.entry(result.jobID) else { return false }
            retry(entry, answer: result, loop)
            return true
        case .unknownHandler:
            // The worker advertised the handler but no longer has it (its list changed on the
            // way): the job never ran; send it to a worker that has it, or end it `noWorkers`.
            // A worker that left the membership (or that the sink expired while the answer
            // was on its way) gets nothing more anyway; only a linked worker that lists no
            // handlers (an older one, sent everything) keeps the answer as the outcome.
            guard let entry = loop.pending.entry(result.jobID), entry.worker != 0,
                  !links.isCurrent(entry.worker) || links.withdraw(entry.submission.handler, from: entry.worker),
                  loop.pending.requeue(result.jobID) else { return false }
            links.answered(by: entry.worker)
            loop.stats.resent += 1
            return true
        default:
            return false
        }
    }

    /// The job's attempt failed and its policy runs it again: it goes out after the delay the
    /// worker asked for, as the next attempt, to another worker when one can run it. A retry
    /// that would start after the job's deadline is not made: the job ends with this attempt's
    /// error.
    private func retry(_ entry: PendingJobs.Entry, answer: ResultMessage, _ loop: ClientLoop<DirectTransport>) {
        let at = Instant.current + RetryAnswer.decode(answer.body).delay
        links.answered(by: entry.worker)
        if at < entry.submission.deadline, loop.pending.scheduleRetry(answer.jobID, attempt: answer.attempt, at: at) {
            loop.stats.retried += 1
            return
        }
        guard let ended = loop.pending.finish(answer.jobID) else { return }
        loop.end(ended.submission.promise, answer.outcome)
    }

    func answered(by worker: UInt32) { links.answered(by: worker) }

    func sendCancel(_ message: [UInt8], worker: UInt32) -> Bool {
        // A job waiting to go again (a retry) is at no worker now; a worker that left the
        // membership with the job unanswered still has its (retired) link.
        guard let socket = links.link(worker)?.socket else { return false }
        return (try? socket.trySend(message)) == true
    }

    func missingWorkers(for job: Submission) -> String? {
        guard links.eligible(.init(handler: job.handler, requires: job.options.requires)).isEmpty else { return nil }
        return RouteMessage.missing(handler: job.handler, requires: job.options.requires,
                                    handlers: links.handlersOffered, labels: links.labelsOffered)
    }

    func beat(now: Instant) {
        _ = try? inbound.trySend(HelloMessage().encode())
    }

    /// Follows the sink's membership list: links to workers that joined, closes those of
    /// workers that left, and updates what each advertises.
    private func apply(_ members: MembersMessage, _ loop: ClientLoop<DirectTransport>) {
        guard members.epoch != membersEpoch, !members.unchanged else { return }
        membersEpoch = members.epoch
        let wanted = Dictionary(members.members.map { ($0.endpoint, $0) }, uniquingKeysWith: { a, _ in a })
        for endpoint in links.keepOnly(Set(wanted.keys)) {
            logger.debug("stopped sending to worker", metadata: ["endpoint": "\(endpoint)"])
        }
        defer {
            loop.pending.unparkAll()  // what no worker could run may have a worker now
            loop.core.workerCapabilities.publish(links.links.map(\.capabilities))
        }
        for (endpoint, member) in wanted where links.contains(endpoint: endpoint) {
            links.update(endpoint: endpoint, capabilities: member.capabilities)
        }
        for (endpoint, member) in wanted where !links.contains(endpoint: endpoint) {
            if links.revive(workerID: member.workerID, endpoint: endpoint, capabilities: member.capabilities) {
                logger.debug("sending to worker again", metadata: ["endpoint": "\(endpoint)"])
                continue
            }
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

    func close(linger: Duration) {
        try? inbound.set(.linger, linger)
        inbound.close()
        links.closeAll(linger: linger)
    }
}
