import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// Submissions that cannot be accepted are dead-lettered with the reason, and the service goes
/// on with the next message.
@Suite struct BadInputTests {
    @Test func badSubmissionsAreDeadLetteredWithTheirReasonAndTheNextGoodOneRuns() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        let bad: [(body: String, id: String, element: String)] = [
            ("this is not XML", "bad-not-xml", "Request"),
            ("<Request><Tag>Teleport</Tag><Input><Object>input/a.mp4</Object></Input><Operation/></Request>", "bad-tag", "Tag"),
            ("<Request><Tag>Snapshot</Tag><Input/><Operation><Output><Object>o/${Number}.jpg</Object></Output></Operation></Request>", "bad-input", "Input.Object"),
            (snapshotRequest(level: 7), "bad-level", "Operation.JobLevel"),
        ]
        for submission in bad {
            try await harness.publish(submission.body, messageID: submission.id)
        }
        try await harness.publish(mediaInfoRequest(userData: "good"), messageID: "good")

        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "good")

        let dead = try await harness.deadLetters(bad.count)
        for submission in bad {
            let letter = try #require(dead.first { $0.properties.messageID == submission.id })
            #expect(letter.text == submission.body, "the original body is kept")
            #expect(letter.properties.headers["x-mediaqueue-error-code"] == .string("InvalidArgument"))
            #expect(letter.properties.headers["x-mediaqueue-error-element"] == .string(submission.element))
            guard case .string(let message)? = letter.properties.headers["x-mediaqueue-error-message"] else {
                Issue.record("no reason for \(submission.id)")
                continue
            }
            #expect(!message.isEmpty)
        }
        #expect(try await harness.client.queueStatus(harness.configuration.intakeQueue).messages == 0)
    }

    /// A `ClientToken` over PostgreSQL's key index limit failed the whole batch's transaction,
    /// which came back for ever: such a key is refused as bad input, the message dead-lettered,
    /// and the message after it stored and run.
    @Test(arguments: ["sqlite", "postgres"])
    func anIdempotencyKeyTooLongIsDeadLetteredAndTheNextMessageRuns(store: String) async throws {
        let databaseURL = store == "postgres" ? try await TestDatabase.create() : nil
        let harness = try ServiceHarness { $0.databaseURL = databaseURL }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        // Random, so that PostgreSQL cannot compress it under its index limit.
        let token = String((0..<3_000).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        try await harness.publish(mediaInfoRequest(userData: "long-token"), headers: ["ClientToken": .string(token)])
        try await harness.publish(mediaInfoRequest(userData: "after"), messageID: "after")

        let letter = try #require(try await harness.deadLetters(1).first)
        #expect(letter.properties.headers["ClientToken"] == .string(token), "the message is kept as sent")
        #expect(letter.properties.headers["x-mediaqueue-error-code"] == .string("InvalidArgument"))
        #expect(letter.properties.headers["x-mediaqueue-error-element"] == .string("ClientToken"))
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "after")
    }

    /// A reason that quotes 200 KB of what the client sent: as a header it would not fit the
    /// connection's frames, the dead letter could never be sent, and the message came back
    /// forever (with a stalled intake). The header carries its beginning.
    @Test func aReasonLongerThanAFrameIsCutAndTheMessageDeadLettered() async throws {
        let harness = try ServiceHarness()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        let huge = String(repeating: "X", count: 200_000)
        try await harness.publish("""
            <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation/><CallBackFormat>\(huge)</CallBackFormat></Request>
            """, messageID: "huge-reason")
        try await harness.publish(mediaInfoRequest(userData: "after"), messageID: "after")
        let letter = try #require(try await harness.deadLetters(1).first)
        #expect(letter.properties.messageID == "huge-reason")
        #expect(letter.body.count > 200_000, "the original body is kept whole")
        guard case .string(let message)? = letter.properties.headers["x-mediaqueue-error-message"] else {
            Issue.record("no reason")
            return
        }
        #expect(message.hasPrefix("CallBackFormat: must be XML or JSON, not 'XXX") && message.hasSuffix("…"), "\(message.prefix(80))")
        #expect(message.utf8.count <= 1024)
        try await eventually("the next message to be stored") { try await harness.client.queueStatus(harness.configuration.intakeQueue).messages == 0 }
    }

    /// A bad submission whose headers fill its frame: with the reason added, its dead letter
    /// could not be sent, the intake's connection went down on every try and the message came
    /// back forever. The dead letter goes without the message's headers, saying so, and the next
    /// message runs.
    @Test func aBadSubmissionWhoseHeadersFillItsFrameIsDeadLetteredWithoutThemAndTheNextRuns() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        var properties = AMQPProperties(contentType: "application/xml", messageID: "full-headers", persistent: true, headers: ["x-padding": ""])
        properties.headers["x-padding"] = .string(String(repeating: "p", count: AMQPProperties.maxEncodedSize() - properties.encodedSize))
        try await harness.client.publish(AMQPOutgoingMessage(routingKey: harness.configuration.intakeQueue, body: Array("not XML".utf8), properties: properties))
        try await harness.publish(mediaInfoRequest(userData: "after"), messageID: "after")

        let letter = try #require(try await harness.deadLetters(1).first)
        #expect(letter.properties.messageID == "full-headers")
        #expect(letter.text == "not XML", "the body is kept")
        #expect(letter.properties.headers["x-padding"] == nil)
        #expect(letter.properties.headers["x-mediaqueue-headers-dropped"] != nil)
        #expect(letter.properties.headers["x-mediaqueue-error-code"] == .string("InvalidArgument"))
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "after")
    }

    @Test func aMissingInputFileFailsTheJobWithInputNotExistAndTheServiceGoesOn() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish(snapshotRequest(object: "input/missing.mp4", userData: "missing"))
        try await harness.publish(mediaInfoRequest(userData: "after"))
        let received = try await harness.receive(2, from: events)
        let byUserData = Dictionary(uniqueKeysWithValues: received.compactMap { message -> (String, XMLTree)? in
            guard let detail = message.xml?["JobsDetail"], let userData = detail.text("Operation", "UserData") else { return nil }
            return (userData, detail)
        })
        #expect(byUserData["missing"]?.text("State") == "Failed")
        #expect(byUserData["missing"]?.text("Code") == "InputNotExist")
        #expect(received.contains { $0.routingKey.hasSuffix(".Snapshot.Failed") })
        #expect(byUserData["after"]?.text("State") == "Success")
    }
}

/// A callback URL whose host is a literal private address is refused when it is given, not only
/// when its delivery would be attempted (the connect-time guard refuses it either way).
@Suite struct CallbackAddressTests {
    @Test func aJobsOwnCallBackToAPrivateAddressIsDeadLetteredNamingCallBack() async throws {
        let harness = try ServiceHarness()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish("""
            <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation/>
            <CallBack>http://10.1.2.3/cb</CallBack></Request>
            """, messageID: "private-callback")
        let letter = try #require(try await harness.deadLetters(1).first)
        #expect(letter.properties.messageID == "private-callback")
        #expect(letter.properties.headers["x-mediaqueue-error-element"] == .string("CallBack"))
    }

    /// Rules that could never deliver: a private address, a TDMQ queue name no broker takes.
    @Test(arguments: [
        ("<Type>Url</Type><Url>http://192.168.1.10/cb</Url>", "NotifyConfig.Url"),
        ("<Type>TDMQ</Type><MqMode>Queue</MqMode><MqName>\(String(repeating: "q", count: 256))</MqName><MqRegion>sh</MqRegion>", "NotifyConfig.MqName"),
    ])
    func theAPIRefusesARuleItCouldNeverDeliverToAndStoresNothing(destination: String, element: String) async throws {
        let harness = try ServiceHarness { $0.anonymous = true }
        let port = Mutex<Int?>(nil)
        let (application, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }
        let queue = try await application.prepare()

        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(listening)/\(harness.configuration.bucket)/queue/\(queue.id)")!)
        request.httpMethod = "PUT"
        request.httpBody = Data("""
            <Request><NotifyConfig><State>On</State><Event>TaskFinish</Event>\(destination)</NotifyConfig></Request>
            """.utf8)
        let (body, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 400)
        let error = try XMLDocumentParser.parse(Array(body))
        #expect(error.name == "Error")
        #expect(error.text("Code") == "InvalidArgument")
        #expect(error.text("Message")?.hasPrefix(element) == true, "\(error.text("Message") ?? "")")
        #expect(try await application.store.queue(id: queue.id)?.notifyConfig == queue.notifyConfig)
    }
}
