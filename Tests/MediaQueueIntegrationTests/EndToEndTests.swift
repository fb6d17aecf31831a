import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// A job from AMQP submission to its TaskFinish event, through the real broker, a SQLite file
/// and ffmpeg.
@Suite struct EndToEndTests {
    @Test func aSnapshotJobWritesItsFilesAndAnnouncesTaskFinishOnTheRulesTopic() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 5)
        let events = try await harness.subscribeToEvents()
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish(snapshotRequest(userData: "snap-1", level: 2), messageID: "m-1")
        let event = try #require(try await harness.receive(1, from: events).first)

        let queue = try #require(try await application.store.queues(bucket: harness.configuration.bucket).first)
        #expect(event.routingKey == "job.\(queue.id).Snapshot.Success")
        #expect(event.properties.contentType == "application/xml")
        #expect(event.properties.persistent)
        let body = try #require(event.xml)
        #expect(body.name == "Response")
        #expect(body.text("EventName") == "TaskFinish")
        let detail = try #require(body["JobsDetail"])
        #expect(detail.text("State") == "Success")
        #expect(detail.text("Code") == "Success")
        #expect(detail.text("Tag") == "Snapshot")
        #expect(detail.text("QueueId") == queue.id.rawValue)
        #expect(detail.text("Operation", "UserData") == "snap-1")
        #expect(detail.text("Operation", "JobLevel") == "2")
        #expect(detail.text("Input", "BucketId") == harness.configuration.bucket)
        #expect(detail.text("StartTime") != "-")
        #expect(detail.text("EndTime") != "-")
        let jobID = try #require(detail.text("JobId"))
        #expect(event.properties.headers["x-ci-job-id"] == .string(jobID))
        #expect(event.properties.messageID?.isEmpty == false)

        let names = detail["Operation"]?["MediaResult"]?["OutputFile"]?.all("ObjectName").map(\.text) ?? []
        #expect(names == ["out/snap-0.jpg", "out/snap-1.jpg", "out/snap-2.jpg"])
        for name in names {
            #expect(FileManager.default.fileExists(atPath: harness.bucketRoot + "/" + name))
        }
        let stored = try #require(try await application.store.job(id: JobID(rawValue: jobID)))
        #expect(stored.state == .success)
        #expect(stored.progress == 100)
    }

    @Test func aMediaInfoJobReportsTheInputsMediaInfoAndRepliesToTheProducer() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 3)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        // The producer asks for a reply, as `mediaqueue submit` does.
        let reply = try await Submitter(connection: harness.client, intakeQueue: harness.configuration.intakeQueue)
            .submit(Array(mediaInfoRequest(userData: "probe").utf8), bucket: nil, timeout: hangBound)
        guard case .accepted(let response) = reply else {
            Issue.record("refused: \(reply)")
            return
        }
        let submitted = try #require(response["JobsDetail"])
        #expect(submitted.text("State") == "Submitted")
        #expect(submitted.text("StartTime") == "-")
        let jobID = try #require(submitted.text("JobId"))
        #expect(jobID.hasPrefix("j") && jobID.count == 33)

        let event = try #require(try await harness.receive(1, from: events).first)
        let detail = try #require(event.xml?["JobsDetail"])
        #expect(detail.text("JobId") == jobID)
        #expect(detail.text("State") == "Success")
        let info = try #require(detail["Operation"]?["MediaInfo"])
        let duration = try #require(Double(info.text("Format", "Duration") ?? ""))
        #expect(abs(duration - 3) < 0.5)
        #expect(info["Stream"]?["Video"]?.text("Width") == "320")
    }

    @Test func aJSONRuleSetThroughUpdateMediaQueueDeliversJSONBodies() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let events = try await harness.subscribeToEvents()
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        var queue = try await application.prepare()
        let update = try QueueUpdateRequest.parse(Array("""
            <Request><NotifyConfig><State>On</State><Type>TDMQ</Type><Event>TaskFinish</Event><ResultFormat>JSON</ResultFormat>
            <MqMode>Topic</MqMode><MqName>\(harness.configuration.eventsExchange)</MqName><MqRegion>sh</MqRegion></NotifyConfig></Request>
            """.utf8))
        queue.notifyConfig = try #require(update.notifyConfig)
        try await application.store.updateQueue(queue)

        try await harness.publish(mediaInfoRequest(userData: "json please"))
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.properties.contentType == "application/json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(event.body)) as? [String: Any])
        #expect(object["EventName"] as? String == "TaskFinish")
        let detail = try #require(object["JobsDetail"] as? [String: Any])
        #expect(detail["State"] as? String == "Success")
        #expect((detail["Operation"] as? [String: Any])?["UserData"] as? String == "json please")
    }

    @Test func aQueueModeOverrideDeliversToThatQueueAndNoSilencesTheRule() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let events = try await harness.subscribeToEvents()
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        let target = TestEnvironment.uniqueName("it.cmq")
        try await harness.publish("""
            <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>silent</UserData></Operation>
            <CallBack>no</CallBack></Request>
            """)
        try await harness.publish("""
            <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>to-queue</UserData></Operation>
            <CallBackType>TDMQ</CallBackType><CallBackMqConfig><MqRegion>gz</MqRegion><MqMode>Queue</MqMode><MqName>\(target)</MqName></CallBackMqConfig></Request>
            """)
        try await harness.publish(mediaInfoRequest(userData: "rule"))

        var delivered: AMQPMessage?
        try await eventually("a message on the override's queue") {
            delivered = try? await harness.client.get(queue: target)
            return delivered != nil
        }
        #expect(delivered?.xml?["JobsDetail"]?.text("Operation", "UserData") == "to-queue")
        // The rule's topic sees only the job without an override; "silent" never shows up: once
        // all three ended and every delivery went out, a marker closes what the topic got.
        try await eventually("the three jobs to end and their deliveries to go out") {
            let jobs = try await application.store.jobs(JobQuery(limit: 10))
            let pending = try await application.store.dueOutbox(.tdmq, now: Timestamp(seconds: Int64.max / 2000), limit: 1)
            return jobs.count == 3 && jobs.allSatisfy(\.state.isTerminal) && pending.isEmpty
        }
        try await harness.publishMarker("job.marker")
        let ruleEvents = try await harness.receive(until: "job.marker", from: events)
        #expect(ruleEvents.map { $0.xml?["JobsDetail"]?.text("Operation", "UserData") } == ["rule"])
    }
}
