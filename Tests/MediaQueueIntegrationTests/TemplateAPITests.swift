import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import Testing

/// Custom templates through a running service with real ffmpeg, driven by Tencent's own Python
/// SDK: created, listed, updated, used by a transcode whose output ffprobe checks, deleted.
@Suite struct TemplateAPITests {
    @Test(
        .enabled(if: SDKTests.python != nil, "needs MEDIAQUEUE_TEST_PYTHON with cos-python-sdk-v5 (scripts/test.sh sets it)"),
        arguments: ["sqlite", "postgres"]
    )
    func theSDKManagesTemplatesThatJobsRunWith(store: String) async throws {
        let databaseURL = store == "postgres" ? try await TestDatabase.create() : nil
        let harness = try ServiceHarness {
            $0.credentials = sdkCredentials(bucket: $0.bucket)
            $0.databaseURL = databaseURL
        }
        let video = harness.configuration.dataDir + "-clip.mp4"
        try await SampleMedia.makeVideo(at: video, seconds: 2)
        try await runSDKScript("ci_templates_e2e.py", harness: harness, environment: ["MQ_VIDEO": video], done: "templates: ok")
    }
}
