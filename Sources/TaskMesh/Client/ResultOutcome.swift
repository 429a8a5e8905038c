extension ResultMessage {
    /// The job outcome a RESULT stands for. `declined`, `cancelled` and `retry` are not
    /// outcomes (the job goes elsewhere, has ended already, or runs again); callers handle them
    /// before asking. Errors report the RESULT's attempt number as their attempts.
    var outcome: Result<[UInt8], JobError> {
        if status == .ok { return .success(body) }  // results are bytes: never decode them as text
        let text = String(decoding: body, as: UTF8.self)
        let attempts = Int(attempt)
        return switch status {
        case .ok: .success(body)
        case .unknownHandler: .failure(JobError(.unknownHandler, "no worker has a handler named \"\(text)\"", attempts: attempts))
        case .rejected: .failure(JobError(.rejected, text, attempts: attempts))
        case .failed: .failure(Self.handlerFailure(text, attempts: attempts))
        case .retry: .failure(Self.handlerFailure(String(decoding: RetryAnswer.decode(body).message, as: UTF8.self), attempts: attempts))
        case .overloaded: .failure(JobError(.overloaded, text))
        case .exhausted: .failure(JobError(.attemptsExhausted, text, attempts: attempts))
        case .unroutable: .failure(JobError(.noWorkers, text))
        case .expired: .failure(JobError(.timedOut, text, attempts: attempts))
        case .cancelled: .failure(JobError(.cancelled, text, attempts: attempts))
        case .badRequest, .declined: .failure(JobError(.badRequest, text))
        }
    }

    /// A `failed` body is `Type: message` when the worker knew the error's type
    /// (docs/PROTOCOL.md, "RESULT"): the type becomes `errorType`, the rest the message.
    static func handlerFailure(_ text: String, attempts: Int) -> JobError {
        if let colon = text.range(of: ": "), case let type = text[..<colon.lowerBound], !type.isEmpty, type.count <= 128,
           type.allSatisfy({ $0.isLetter || $0.isNumber || "._<>,".contains($0) }) {
            return JobError(.handlerFailed, String(text[colon.upperBound...]), attempts: attempts, errorType: String(type))
        }
        return JobError(.handlerFailed, text, attempts: attempts)
    }
}
