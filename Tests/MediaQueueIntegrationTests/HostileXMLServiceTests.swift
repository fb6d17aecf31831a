import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// XML built to attack the parser (XXE reading a local file, a document type fetched from the
/// network, "billion laughs", deep nesting), sent through the AMQP intake and the REST API: each
/// is refused with its reason, no file is read, nothing is fetched, and the service goes on.
@Suite struct HostileXMLServiceTests {
    struct Case: Sendable {
        var name: String
        var body: String
        var reason: String
    }

    func cases(secretPath: String, dtdURL: String) -> [Case] {
        [
            Case(
                name: "xxe",
                body: """
                    <?xml version="1.0"?><!DOCTYPE Request [<!ENTITY s SYSTEM "file://\(secretPath)">]>
                    <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>&s;</UserData></Operation></Request>
                    """,
                reason: "DOCTYPE declarations are not accepted"
            ),
            Case(
                name: "external-dtd",
                body: "<?xml version=\"1.0\"?><!DOCTYPE Request SYSTEM \"\(dtdURL)\"><Request><Tag>MediaInfo</Tag></Request>",
                reason: "DOCTYPE declarations are not accepted"
            ),
            Case(
                name: "billion-laughs",
                body: "<!DOCTYPE Request [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><Request><Operation><UserData>&b;</UserData></Operation></Request>",
                reason: "DOCTYPE declarations are not accepted"
            ),
            Case(
                name: "deep",
                body: "<Request>" + String(repeating: "<a>", count: 200) + String(repeating: "</a>", count: 200) + "</Request>",
                reason: "elements nest deeper than"
            ),
        ]
    }

    @Test func hostileXMLIsDeadLetteredByTheIntakeAndRefusedByTheAPIWithoutReadingAnything() async throws {
        let harness = try ServiceHarness { $0.anonymous = true }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
        let secret = "TOP-SECRET-\(UUID().uuidString)"
        let secretPath = harness.configuration.dataDir + "/secret.txt"
        try secret.write(toFile: secretPath, atomically: true, encoding: .utf8)
        let dtdServer = try TestHTTPReceiver { _, _ in .status(200, body: "<!ENTITY x \"\(secret)\">") }
        let hostile = cases(secretPath: secretPath, dtdURL: dtdServer.url("/evil.dtd"))
        let events = try await harness.subscribeToEvents()
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService { _, listening in port.withLock { $0 = listening } }
        defer { service.cancel() }
        try await harness.waitForIntake()
        let api = try await eventually("the API to listen") { port.withLock { $0 } }

        // The intake: each is dead-lettered with its reason; the good job after them runs.
        for item in hostile { try await harness.publish(item.body, messageID: item.name) }
        try await harness.publish(mediaInfoRequest(userData: "good"), messageID: "good")
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "good")
        let dead = try await harness.deadLetters(hostile.count)
        for item in hostile {
            let letter = try #require(dead.first { $0.properties.messageID == item.name })
            #expect(letter.properties.headers["x-mediaqueue-error-code"] == .string("InvalidArgument"))
            guard case .string(let message)? = letter.properties.headers["x-mediaqueue-error-message"] else {
                Issue.record("no reason for \(item.name)")
                continue
            }
            #expect(message.contains(item.reason), "\(item.name): \(message)")
            #expect(!message.contains(secret))
        }

        // The REST API: CI's <Error> with the reason, and the service still answers.
        for item in hostile {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(api)/\(harness.configuration.bucket)/jobs")!)
            request.httpMethod = "POST"
            request.setValue("application/xml", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(item.body.utf8)
            let (body, response) = try await URLSession.shared.data(for: request)
            let text = String(decoding: body, as: UTF8.self)
            #expect((response as? HTTPURLResponse)?.statusCode == 400, "\(item.name): \(text)")
            #expect(text.contains("<Code>InvalidArgument</Code>") && text.contains(item.reason), "\(item.name): \(text)")
            #expect(!text.contains(secret))
        }
        #expect(try await probeReadiness(port: api).status == 200)
        #expect(dtdServer.requests.isEmpty, "nothing fetched the document type")
    }
}
