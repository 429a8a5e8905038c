extension ResultMessage {
    /// The job outcome a RESULT stands for. `declined` is not an outcome (the job never started
    /// and goes to another worker); callers handle it before asking.
    var outcome: Result<[UInt8], JobError> {
        if status == .ok { return .success(body) }  // results are bytes: never decode them as text
        let text = String(decoding: body, as: UTF8.self)
        return switch status {
        case .ok: .success(body)
        case .unknownHandler: .failure(JobError(.unknownHandler, "no worker has a handler named \"\(text)\""))
        case .rejected: .failure(JobError(.rejected, text))
        case .failed: .failure(JobError(.handlerFailed, text))
        case .overloaded: .failure(JobError(.overloaded, text))
        case .exhausted: .failure(JobError(.attemptsExhausted, text))
        case .unroutable: .failure(JobError(.noWorkers, text))
        case .expired: .failure(JobError(.timedOut, text))
        case .badRequest, .declined: .failure(JobError(.badRequest, text))
        }
    }
}
