internal import CZMQ

/// Facts about the libzmq this process is linked against, and the gate that refuses to run on
/// one that is too old.
public enum LibZMQ {
    /// The oldest libzmq TaskMesh accepts: 4.3.3 carries the fixes for CVE-2020-15166 and the
    /// GHSAs listed in docs/SECURITY.md.
    public static let minimumVersion = Version(major: 4, minor: 3, patch: 3)

    /// A libzmq version triple.
    public struct Version: Comparable, Sendable, CustomStringConvertible {
        public let major: Int
        public let minor: Int
        public let patch: Int
        public init(major: Int, minor: Int, patch: Int) {
            self.major = major
            self.minor = minor
            self.patch = patch
        }
        public static func < (lhs: Version, rhs: Version) -> Bool {
            (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }
        public var description: String { "\(major).\(minor).\(patch)" }
    }

    /// The version of the linked libzmq.
    public static var version: Version {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return Version(major: Int(major), minor: Int(minor), patch: Int(patch))
    }

    /// Whether libzmq was built with a capability ("curve", "ipc", "draft", ...).
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) == 1
    }

    /// Whether CURVE encryption is available (libzmq linked against libsodium).
    public static var hasCurve: Bool { has("curve") }

    /// Throws `ZMQError.Code.unsupportedLibrary` when the linked libzmq is older than
    /// `minimumVersion` (or than `minimum`, when given).
    public static func requireSupported(minimum: Version = minimumVersion, actual: Version = version) throws(ZMQError) {
        guard actual >= minimum else {
            throw ZMQError(
                .unsupportedLibrary,
                message: "libzmq \(actual) is too old: TaskMesh needs \(minimum) or newer (install libzmq3-dev from Debian 12 or later)"
            )
        }
    }

    /// Throws `ZMQError.Code.unsupportedLibrary` when CURVE is missing (or `available` is false).
    public static func requireCurve(available: Bool = hasCurve) throws(ZMQError) {
        guard available else {
            throw ZMQError(.unsupportedLibrary, message: "libzmq was built without CURVE (libsodium); secure topologies cannot run")
        }
    }
}
