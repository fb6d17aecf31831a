import MediaQueueCore
import Testing

/// A submission beyond its limits is refused naming what is too large, before anything runs.
@Suite struct SubmissionLimitsTests {
    let limits = SubmissionLimits(maxBodyBytes: 2_000, maxOperations: 2, maxUserDataBytes: 8)

    func request(operations: Int, userData: String = "u", padding: Int = 0) -> [UInt8] {
        let operation = "<Operation><Tag>MediaInfo</Tag><UserData>\(userData)</UserData></Operation>"
        let body = "<Request><Input><Object>a.mp4</Object></Input>\(String(repeating: operation, count: operations))"
            + "<!--\(String(repeating: "x", count: padding))--></Request>"
        return Array(body.utf8)
    }

    func refusal(_ body: [UInt8]) -> CIError? {
        do {
            _ = try CreateMediaJobsRequest.parse(body, limits: limits) { _ in }
            return nil
        } catch {
            return error
        }
    }

    @Test func withinTheLimitsARequestIsAccepted() {
        #expect(refusal(request(operations: 2, userData: "12345678")) == nil)
    }

    @Test func eachLimitIsRefusedNamingItsElement() {
        #expect(refusal(request(operations: 1, padding: 2_000))?.element == "Request")
        #expect(refusal(request(operations: 3))?.message == "Operation: a request may hold at most 2 operations, not 3")
        #expect(refusal(request(operations: 1, userData: "123456789"))?.message == "Operation.UserData: is longer than 8 bytes")
    }

    @Test func theDefaultsAreCIs() {
        let defaults = SubmissionLimits()
        #expect(defaults.maxUserDataBytes == 1024)
        #expect(defaults.maxBodyBytes == 1 << 20)
    }
}
