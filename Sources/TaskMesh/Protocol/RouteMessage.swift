/// The words of a `noWorkers` outcome for a job no live worker can run: what was missing and
/// what the mesh has, so the person reading it can tell a typo from a pool that is down.
enum RouteMessage {
    static func missing(handler: String, requires: [String], handlers: [String], labels: [String]) -> String {
        let hasHandler = handlers.contains(handler)
        var text: String
        if !hasHandler {
            text = "no live worker has a handler named \"\(handler)\""
        } else {
            let absent = requires.filter { !labels.contains($0) }
            let named = (absent.isEmpty ? requires : absent).map { "\"\($0)\"" }.joined(separator: ", ")
            text = "no live worker with handler \"\(handler)\" carries every required label (missing: \(named))"
        }
        if !hasHandler && !requires.isEmpty {
            text += " (required labels: \(requires.joined(separator: ", ")))"
        }
        text += handlers.isEmpty ? "; the mesh's workers list no handlers" : "; the mesh's workers have: \(handlers.joined(separator: ", "))"
        if !labels.isEmpty { text += " (labels: \(labels.joined(separator: ", ")))" }
        return text
    }
}
