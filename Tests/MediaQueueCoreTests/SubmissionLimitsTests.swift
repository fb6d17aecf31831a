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

    /// A job's `Workflow` names the run it is a node of, and `MediaResult`/`MediaInfo` its
    /// results: the service writes them, and a client's would be taken for its own.
    @Test func whatTheServiceWritesIntoAnOperationIsRefusedFromASubmission() {
        for element in ["<Workflow><WorkflowId>w-other</WorkflowId><RunId>i-other</RunId></Workflow>", "<MediaResult/>", "<MediaInfo/>"] {
            let body = "<Request><Input><Object>a.mp4</Object></Input><Operation><Tag>MediaInfo</Tag>\(element)</Operation></Request>"
            let name = String(element.dropFirst().prefix { $0 != ">" && $0 != "/" })
            #expect(refusal(Array(body.utf8))?.element == "Operation.\(name)")
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

    @Test func anObjectKeyAnywhereInAnOperationOrItsInputIsHeldToTheKeyLimit() {
        let limits = SubmissionLimits(maxObjectKeyBytes: 10)
        func refusal(_ body: String) -> String? {
            do {
                _ = try CreateMediaJobsRequest.parse(Array(body.utf8), limits: limits) { _ in }
                return nil
            } catch {
                return error.message
            }
        }
        let long = String(repeating: "k", count: 11)
        #expect(refusal("<Request><Input><Object>a.mp4</Object></Input><Operation><Tag>MediaInfo</Tag></Operation></Request>") == nil)
        #expect(refusal("<Request><Input><Object>\(long)</Object></Input><Operation><Tag>MediaInfo</Tag></Operation></Request>")
            == "Input.Object: is longer than 10 bytes")
        #expect(refusal("<Request><Input><Object>a.mp4</Object></Input><Operation><Tag>Transcode</Tag><Output><Object>\(long)</Object></Output></Operation></Request>")
            == "Operation.Output.Object: is longer than 10 bytes")
        #expect(refusal("<Request><Operation><Tag>Concat</Tag><Input><Object>a.mp4</Object></Input><ConcatTemplate><ConcatFragment><Object>\(long)</Object></ConcatFragment></ConcatTemplate></Operation></Request>")
            == "Operation.ConcatTemplate.ConcatFragment.Object: is longer than 10 bytes")
        #expect(SubmissionLimits(maxObjectKeyBytes: 5_000).maxObjectKeyBytes == 850)
    }

    @Test func theDefaultsAreCIs() {
        let defaults = SubmissionLimits()
        #expect(defaults.maxUserDataBytes == 1024)
        #expect(defaults.maxBodyBytes == 1 << 20)
        #expect(defaults.maxObjectKeyBytes == 850)
    }
}
