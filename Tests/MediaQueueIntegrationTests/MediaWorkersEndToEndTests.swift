import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// The media workers through the whole service: registration, the TemplateName echo, results in
/// the TaskFinish event, and the job time limit ending a stuck job as Failed.
@Suite struct MediaWorkersEndToEndTests {
    @Test func aTranscodeJobByTemplateIdSucceedsAndEchoesTheTemplateName() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        // MP4-H264-SD; the inline Transcode loses to it.
        try await harness.publish("""
            <Request><Tag>Transcode</Tag><Input><Object>input/a.mp4</Object></Input><Operation>
            <TemplateId>t0cba0cccc978d16d1318ebe6ecd6bf14c</TemplateId>
            <Transcode><Container><Format>flv</Format></Container></Transcode>
            <Output><Object>out/${InputName}-sd.${ext}</Object></Output></Operation></Request>
            """)
        let event = try #require(try await harness.receive(1, from: events).first)
        let detail = try #require(event.xml?["JobsDetail"])
        #expect(event.routingKey.hasSuffix(".Transcode.Success"))
        #expect(detail.text("State") == "Success")
        #expect(detail.text("Operation", "TemplateName") == "MP4-H264-SD")
        #expect(detail["Operation"]?["MediaResult"]?["OutputFile"]?.all("ObjectName").map(\.text) == ["out/a-sd.mp4"])
        #expect(detail.text("Operation", "MediaInfo", "Stream", "Video", "Height") == "480")
        #expect(FileManager.default.fileExists(atPath: harness.bucketRoot + "/out/a-sd.mp4"))
    }

    @Test func aJobWithInputUrlFetchesItOverHTTPAndAPrivateURLIsRefusedByDefault() async throws {
        let served = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("served")).path
        defer { try? FileManager.default.removeItem(atPath: served) }
        try await SampleMedia.makeVideo(at: served + "/clip.mp4", seconds: 1)
        let video = Array(try Data(contentsOf: URL(fileURLWithPath: served + "/clip.mp4")))
        let origin = try TestHTTPReceiver { _, _ in .bytes(200, body: video) }
        defer { origin.stop() }
        let request = """
            <Request><Tag>MediaInfo</Tag><Input><Url>\(origin.url("/media/clip.mp4"))</Url></Input><Operation><UserData>u</UserData></Operation></Request>
            """

        // Loopback allowed, as an operator would allow a private media origin.
        let allowed = try ServiceHarness { $0.inputURLAllowedNetworks = ["127.0.0.0/8"] }
        let events = try await allowed.subscribeToEvents()
        let (_, service) = try allowed.startService()
        try await allowed.waitForIntake()
        try await allowed.publish(request)
        let detail = try #require(try await allowed.receive(1, from: events).first?.xml?["JobsDetail"])
        service.cancel()
        #expect(detail.text("State") == "Success")
        #expect(detail.text("Input", "Url") == origin.url("/media/clip.mp4"))
        #expect(detail.text("Operation", "MediaInfo", "Stream", "Video", "Width") == "320")
        #expect(origin.requests.map(\.method) == ["GET"])

        // The default guard, even with loopback exempt for callbacks (the operator's receivers,
        // which a tenant's input URL must not reach): the same URL ends Failed with the reason,
        // and nothing is requested.
        let guarded = try ServiceHarness { $0.callbackAllowedNetworks = ["127.0.0.0/8"] }
        let guardedEvents = try await guarded.subscribeToEvents()
        let (_, guardedService) = try guarded.startService()
        defer { guardedService.cancel() }
        try await guarded.waitForIntake()
        try await guarded.publish(request)
        let failed = try #require(try await guarded.receive(1, from: guardedEvents).first?.xml?["JobsDetail"])
        #expect(failed.text("State") == "Failed")
        #expect(failed.text("Code") == "InputFetchFailed")
        #expect(failed.text("Message")?.contains("loopback") == true)
        #expect(origin.requests.count == 1)
    }

    @Test func aJobPastItsTimeLimitEndsFailedWithJobTimeout() async throws {
        let scripts = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("hang")).path
        try FileManager.default.createDirectory(atPath: scripts, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scripts) }
        // Written by a child shell, so no child forked meanwhile holds it open for writing (ETXTBSY).
        let hanging = scripts + "/ffmpeg"
        let pidFile = scripts + "/pid"
        // It says who it is, starts its output (the last argument), and hangs.
        let script = "#!/bin/sh\\necho $$ > \"%s\"\\nfor last; do :; done\\nprintf partial > \"$last\"\\nexec sleep 600\\n"
        try await runCommand("/bin/sh", ["-c", "printf '\(script)' \"$2\" > \"$1\" && chmod 755 \"$1\"", "sh", hanging, pidFile])
        let harness = try ServiceHarness { configuration in
            configuration.ffmpegPath = hanging
            // Long enough for the real ffprobe before it, on a loaded machine, to be done.
            configuration.jobTimeoutSeconds = 5
        }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 3)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish(snapshotRequest(output: "out/one.jpg", count: 1))
        let event = try #require(try await harness.receive(1, from: events).first)
        let detail = try #require(event.xml?["JobsDetail"])
        #expect(event.routingKey.hasSuffix(".Snapshot.Failed"))
        #expect(detail.text("State") == "Failed")
        #expect(detail.text("Code") == "JobTimeout")
        #expect(detail.text("Message")?.contains("time limit of 5 s") == true)
        // The hung process is stopped, and what it had started writing is gone with its folder.
        let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        try await eventually("the hung ffmpeg to be gone") { kill(pid, 0) != 0 }
        let out = harness.bucketRoot + "/out"
        let left = FileManager.default.fileExists(atPath: out) ? try FileManager.default.subpathsOfDirectory(atPath: out) : []
        #expect(left.isEmpty, "\(left)")
    }
}
