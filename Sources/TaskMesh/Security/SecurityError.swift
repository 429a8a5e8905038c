/// Why a secure role cannot start. Messages name files and fields, never key material.
public struct SecurityError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, CustomStringConvertible {
        /// A key file is missing, unreadable, or does not hold a Z85 key.
        case badKeyFile
        /// The topology lacks a key this role needs (its secret key, a server's public key).
        case missingKey
        /// The start-up self-test connected with an unknown key and was accepted: the server
        /// would fail open, so it refuses to run.
        case failsOpen
        /// The start-up self-test could not tell whether unknown keys are rejected.
        case selfTestInconclusive
        /// Plaintext tcp to an address other than loopback without `insecure: true`.
        case plaintextOffLoopback
        /// libzmq lacks CURVE.
        case curveUnavailable
        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "SecurityError.\(code): \(message)" }
}
