import Foundation
import Logging
import Testing
import ZMQ
@testable import TaskMesh

/// Typed errors: their JSON form, codes a user can switch over, failed bodies.
struct JobErrorTests {
    @Test func jobErrorRoundTripsThroughJSON() throws {
        let error = JobError(.handlerFailed, "no such image", attempts: 3, errorType: "ImageError")
        let decoded = try JSONDecoder().decode(JobError.self, from: try JSONEncoder().encode(error))
        #expect(decoded == error)
        #expect(decoded.code == .handlerFailed)
        let json = String(decoding: try JSONEncoder().encode(JobError(.cancelled)), as: UTF8.self)
        #expect(json.contains("\"code\":\"cancelled\""))
    }

    @Test func errorCodesAreEnumsAUserCanSwitchOver() throws {
        // Exhaustive switches: a code added later is a compile error here, not a silent default.
        func action(_ code: JobError.Code) -> String {
            switch code {
            case .unknownHandler, .noWorkers: "deploy a worker"
            case .rejected, .invalidJob, .payloadTooLarge, .duplicateJobID, .badRequest, .decodingFailed: "fix the job"
            case .handlerFailed, .attemptsExhausted: "look at the handler"
            case .timedOut, .overloaded: "try again later"
            case .meshClosed, .cancelled: "nothing"
            }
        }
        #expect(action(.overloaded) == "try again later")
        func security(_ code: SecurityError.Code) -> Bool {
            switch code {
            case .badKeyFile, .missingKey, .plaintextOffLoopback: true
            case .failsOpen, .selfTestInconclusive, .curveUnavailable: false
            }
        }
        #expect(security(.missingKey))
        #expect(JobError.Code.timedOut.description == "timedOut")
        // A code this version does not know is a decoding error, not a made-up code.
        let unknown = Data(#"{"code":"somethingNew","message":"","attempts":0}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(JobError.self, from: unknown) }
    }

    @Test func failedBodiesSplitIntoTypeAndMessage() {
        let typed = ResultMessage.handlerFailure("Module.ImageError: no such image: x.png", attempts: 1)
        #expect(typed.errorType == "Module.ImageError" && typed.message == "no such image: x.png")
        let plain = ResultMessage.handlerFailure("disk full, try later", attempts: 1)
        #expect(plain.errorType == nil && plain.message == "disk full, try later")
    }

}
