import ArgumentParser
import TaskMesh

extension Topology {
    /// Applies `--sink` or `--broker`: points this process at another hub than the file names,
    /// by setting the endpoint `sinkEndpoint` (direct mode) or `brokerEndpoint` (reliable mode).
    /// Throws a `ValidationError` for the flag of the other mode, which would otherwise be
    /// ignored.
    mutating func point(sink: String?, broker: String?, sinkEndpoint: WritableKeyPath<Sink, String>,
                        brokerEndpoint: WritableKeyPath<Broker, String>) throws {
        if let sink {
            guard self.sink != nil else { throw ValidationError("--sink applies to a direct mesh; this topology is reliable (use --broker)") }
            self.sink?[keyPath: sinkEndpoint] = sink
        }
        if let broker {
            guard self.broker != nil else { throw ValidationError("--broker applies to a reliable mesh; this topology is \(mode.rawValue) (use --sink)") }
            self.broker?[keyPath: brokerEndpoint] = broker
        }
    }
}
