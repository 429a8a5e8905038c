import Synchronization

/// A value shared between a loop thread, which publishes it, and any thread that reads it.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    var value: Value { mutex.withLock { $0 } }

    func publish(_ value: Value) { mutex.withLock { $0 = value } }

    func update<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
