import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueTestSupport
import Synchronization
import Testing

/// The configured limits hold on both ways in: the intake dead-letters with the reason, the API
/// answers CI's <Error>, and the service goes on.
@Suite struct SubmissionLimitsServiceTests {
    @Test func oversizedSubmissionsAreRefusedByTheIntakeAndTheAPI() async throws {
        let harness = try ServiceHarness { configuration in
            configuration.anonymous = true
            configuration.maxBodyBytes = 4_096
            configuration.maxOperations = 2
            configuration.maxUserDataBytes = 16
            configuration.maxJobIDs = 3
            configuration.maxObjectKeyBytes = 40
            configuration.maxHeaderCount = 20
            configuration.maxHeaderBytes = 2_048
        }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService { _, listening in port.withLock { $0 = listening } }
        defer { service.cancel() }
        try await harness.waitForIntake()
        let api = try await eventually("the API to listen") { port.withLock { $0 } }

        let operation = "<Operation><Tag>MediaInfo</Tag><UserData>u</UserData></Operation>"
        let cases: [(id: String, body: String, message: String)] = [
            ("too-large", "<Request><Input><Object>a.mp4</Object></Input>\(operation)<!--\(String(repeating: "x", count: 5_000))--></Request>",
             "larger than 4096 bytes"),
            ("too-many", "<Request><Input><Object>a.mp4</Object></Input>\(String(repeating: operation, count: 3))</Request>",
             "at most 2 operations"),
            ("user-data", "<Request><Input><Object>a.mp4</Object></Input><Operation><Tag>MediaInfo</Tag><UserData>\(String(repeating: "u", count: 17))</UserData></Operation></Request>",
             "longer than 16 bytes"),
            ("object-key", "<Request><Input><Object>\(String(repeating: "k", count: 41))</Object></Input>\(operation)</Request>",
             "Input.Object: is longer than 40 bytes"),
        ]
        for item in cases { try await harness.publish(item.body, messageID: item.id) }
        let dead = try await harness.deadLetters(cases.count)
        for item in cases {
            let letter = try #require(dead.first { $0.properties.messageID == item.id })
            guard case .string(let message)? = letter.properties.headers["x-mediaqueue-error-message"] else {
                Issue.record("no reason for \(item.id)")
                continue
            }
            #expect(message.contains(item.message), "\(item.id): \(message)")
        }
        // The oversized one was never read into memory: its dead letter has no body.
        #expect(dead.first { $0.properties.messageID == "too-large" }?.body.isEmpty == true)

        func send(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> (Int, String) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(api)/\(harness.configuration.bucket)\(path)")!)
            request.httpMethod = method
            request.httpBody = body.map { Data($0.utf8) }
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }
        let (tooLarge, largeBody) = try await send("POST", "/jobs", body: cases[0].body)
        #expect(tooLarge == 413 && largeBody.contains("<Code>EntityTooLarge</Code>"), "\(largeBody)")
        for item in cases.dropFirst() {
            let (status, body) = try await send("POST", "/jobs", body: item.body)
            #expect(status == 400 && body.contains("<Code>InvalidArgument</Code>") && body.contains(item.message), "\(body)")
        }
        let ids = (0..<4).map { _ in "j" + String(repeating: "0", count: 32) }.joined(separator: ",")
        let (idStatus, idBody) = try await send("GET", "/jobs/\(ids)")
        #expect(idStatus == 400 && idBody.contains("name 1 to 3 job ids"), "\(idBody)")
        let manyHeaders = Dictionary(uniqueKeysWithValues: (0..<25).map { ("x-extra-\($0)", "v") })
        let (countStatus, countBody) = try await send("GET", "/queue", headers: manyHeaders)
        #expect(countStatus == 431 && countBody.contains("<Code>RequestHeaderSectionTooLarge</Code>") && countBody.contains("at most 20"), "\(countBody)")
        let (bytesStatus, bytesBody) = try await send("GET", "/queue", headers: ["x-large": String(repeating: "h", count: 3_000)])
        #expect(bytesStatus == 431 && bytesBody.contains("at most 2048 are allowed"), "\(bytesBody)")
        let (fineStatus, _) = try await send("GET", "/queue", headers: ["x-small": "h"])
        #expect(fineStatus == 200)
        #expect(try await probeReadiness(port: api).status == 200)
    }
}
