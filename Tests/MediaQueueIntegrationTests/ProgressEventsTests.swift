import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// `TaskProgress` events (beyond CI) from real transcodes through a real service: on the rule's
/// topic exchange and as signed POSTs to a job's own URL, while the job runs, never after its
/// `TaskFinish`.
@Suite struct ProgressEventsTests {
    func transcode(_ extra: String, userData: String) -> String {
        """
        <Request><Tag>Transcode</Tag><Input><Object>input/long.mp4</Object></Input><Operation>
        <Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.265</Codec><Preset>medium</Preset></Video></Transcode>
        <Output><Object>out/\(userData).mp4</Object></Output><UserData>\(userData)</UserData></Operation>\(extra)</Request>
        """
    }

    @Test func progressEventsArriveWhileATranscodeRunsAndNoneAfterItsTaskFinish() async throws {
        let harness = try ServiceHarness { configuration in
            configuration.progressIntervalSeconds = 1
            configuration.callbackAllowedNetworks = ["127.0.0.0/8"]
        }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/long.mp4", seconds: 20, size: "640x360")
        let receiver = try TestHTTPReceiver()
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        var queue = try await application.prepare()
        queue.notifyConfig.events = [.taskFinish, .taskProgress]
        try await application.store.updateQueue(queue)
        let events = try await harness.subscribeToEvents()
        try await harness.waitForIntake()

        // One job announces through the rule's topic exchange; the other asks for progress on its own URL.
        try await harness.publish(transcode("", userData: "topic"))
        try await harness.publish(transcode(
            "<CallBack>\(receiver.url())</CallBack><CallBackEvent>TaskFinish,TaskProgress</CallBackEvent>", userData: "url"
        ))

        // The topic: every message up to the job's TaskFinish; then, once both jobs ended and the
        // service stopped (nothing it sends can still be on its way), up to a marker.
        let untilFinish = try await harness.receive(from: events) { $0.contains { $0.routingKey.hasSuffix(".Transcode.Success") } }
        try await eventually("the URL job's TaskFinish") { receiver.requests.contains { $0.headers["x-ci-event"] == "TaskFinish" } }
        service.cancel()
        _ = await service.result
        try await harness.publishMarker("job.marker")
        let afterFinish = try await harness.receive(until: "job.marker", from: events)
        let progress = untilFinish.filter { $0.routingKey == "job.\(queue.id.rawValue).Transcode.Progress" }
        #expect(progress.count >= 2, "progress events while the 20-second transcode ran")
        #expect(progress.count == untilFinish.count - 1, "nothing but progress before the TaskFinish")
        let topicValues = try progress.map { message -> Int in
            let document = try XMLDocumentParser.parse(message.body)
            #expect(document.text("EventName") == "TaskProgress")
            #expect(document["JobsDetail"]?.text("State") == "Running")
            #expect(document["JobsDetail"]?["Operation"]?.text("UserData") == "topic")
            #expect(message.properties.headers["x-ci-event"] == .string("TaskProgress"))
            return Int(document["JobsDetail"]?.text("Progress") ?? "") ?? -1
        }
        #expect(topicValues == topicValues.sorted() && topicValues.allSatisfy { (0...100).contains($0) }, "\(topicValues)")
        #expect(afterFinish.allSatisfy { !$0.routingKey.hasSuffix(".Progress") }, "no progress after TaskFinish")

        // The URL: signed POSTs of TaskProgress, all before its TaskFinish (read after the service stopped).
        let requests = receiver.requests
        let finishIndex = try #require(requests.firstIndex { $0.headers["x-ci-event"] == "TaskFinish" })
        let posted = requests.filter { $0.headers["x-ci-event"] == "TaskProgress" }
        #expect(posted.count >= 2)
        #expect(requests[..<finishIndex].allSatisfy { $0.headers["x-ci-event"] == "TaskProgress" })
        #expect(requests[(finishIndex + 1)...].isEmpty, "no progress after TaskFinish")
        for request in posted {
            #expect(request.headers["webhook-signature"]?.hasPrefix("v1,") == true)
            let document = try XMLDocumentParser.parse(request.body)
            #expect(document.text("EventName") == "TaskProgress")
            #expect(document["JobsDetail"]?["Operation"]?.text("UserData") == "url")
        }
    }
}
