/// Why a secure role cannot start. Messages name files and fields, never key material.
public struct SecurityError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A key file is missing, unreadable, or does not hold a Z85 key.
        public static let badKeyFile = Code(name: "badKeyFile")
        /// The topology lacks a key this role needs (its secret key, a server's public key).
        public static let missingKey = Code(name: "missingKey")
        /// The start-up self-test connected with an unknown key and was accepted: the server
        /// would fail open, so it refuses to run.
        public static let failsOpen = Code(name: "failsOpen")
        /// The start-up self-test could not tell whether unknown keys are rejected.
        public static let selfTestInconclusive = Code(name: "selfTestInconclusive")
        /// Plaintext tcp to an address other than loopback without `insecure: true`.
        public static let plaintextOffLoopback = Code(name: "plaintextOffLoopback")
        /// libzmq lacks CURVE.
        public static let curveUnavailable = Code(name: "curveUnavailable")
        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "SecurityError.\(code): \(message)" }
}
