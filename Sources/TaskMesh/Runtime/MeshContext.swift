import ZMQ

/// The messaging context roles share. Roles made with one context reach each other over
/// `inproc://` endpoints, which is how local mode runs every role in one process (`Mesh`
/// makes and passes its own); roles made without one each get a context of their own.
///
/// Thread-safe: any thread may hand it to any role. It lives as long as a role that uses it.
public final class MeshContext: Sendable {
    let zmq: Context

    /// A new context.
    /// - Throws: an error naming libzmq's reason when it cannot make one (for example, out of
    ///   file descriptors).
    public init() throws {
        zmq = try Context()
    }

    init(_ zmq: Context) {
        self.zmq = zmq
    }
}

/// The libzmq this build of TaskMesh links, as `taskmesh version` reports it.
public enum MessagingLibrary {
    /// libzmq's version, `major.minor.patch`.
    public static var version: String { "\(LibZMQ.version)" }
    /// Whether it was built with CURVE (secure meshes need it).
    public static var hasCurve: Bool { LibZMQ.hasCurve }
    /// Why TaskMesh cannot run on it (too old a version), or nil when it can.
    public static var unsupportedReason: String? {
        do {
            try LibZMQ.requireSupported()
            return nil
        } catch {
            return error.message
        }
    }
}
