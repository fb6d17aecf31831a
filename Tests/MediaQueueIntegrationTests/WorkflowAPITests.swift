import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// Workflows end to end with Tencent's own Python SDK against a running service: real ffmpeg,
/// real storage, a real HTTP receiver for the callbacks; on SQLite and on PostgreSQL.
@Suite struct WorkflowAPITests {
    @Test(
        .enabled(if: SDKTests.python != nil, "needs MEDIAQUEUE_TEST_PYTHON with cos-python-sdk-v5 (scripts/test.sh sets it)"),
        arguments: ["sqlite", "postgres"]
    )
    func anUploadRunsTheWorkflowAndItsEndIsAnnounced(store: String) async throws {
        let databaseURL = store == "postgres" ? try await TestDatabase.create() : nil
        let harness = try ServiceHarness {
            $0.credentials = sdkCredentials(bucket: $0.bucket)
            $0.databaseURL = databaseURL
            $0.callbackAllowedNetworks = ["127.0.0.0/8"]
        }
        let receiver = try TestHTTPReceiver()
        defer { receiver.stop() }
        let video = harness.configuration.dataDir + "-clip.mp4"
        try await SampleMedia.makeVideo(at: video, seconds: 2)
        try await runSDKScript(
            "ci_workflows_e2e.py", harness: harness, environment: ["MQ_VIDEO": video, "MQ_RECEIVER": receiver.url()], done: "workflows: ok"
        ) { output in try await expectCallbacks(output, receiver) }
    }

    /// What the receiver must hear of the runs the script printed.
    func expectCallbacks(_ output: String, _ receiver: TestHTTPReceiver) async throws {
        let runs = output.split(separator: "\n").filter { $0.hasPrefix("run: ") }.map { String($0.dropFirst(5)) }
        let failedRun = try #require(output.split(separator: "\n").first { $0.hasPrefix("failed run: ") }.map { String($0.dropFirst(12)) })
        try #require(runs.count == 2, "\(output)")

        // Each run's WorkflowFinish names its three tasks, and each task's TaskFinish its run; the
        // first run's (an upload's) also carry the upload's headers, the triggered one's none.
        for (index, run) in runs.enumerated() {
            let uploadHeaders = index == 0 ? ["content-type: video/mp4", "x-cos-meta-camera: A7"] : []
            func headers(_ element: XMLTree?) -> [String] {
                (element?.all("CosHeaders") ?? []).map { "\(($0.text("Key") ?? "").lowercased()): \($0.text("Value") ?? "")" }
            }
            let finish = try await eventually("the WorkflowFinish of \(run)") {
                receiver.requests.compactMap { try? XMLDocumentParser.parse($0.body) }
                    .first { $0.text("EventName") == "WorkflowFinish" && $0.text("WorkflowExecution", "RunId") == run }
            }
            // Named by its RunId, not under a job's header.
            let finishRequest = try #require(receiver.requests.first { $0.headers["x-ci-event"] == "WorkflowFinish" && $0.headers["x-ci-run-id"] == run })
            #expect(finishRequest.headers["x-ci-job-id"] == nil)
            let execution = try #require(finish["WorkflowExecution"])
            #expect(execution.text("State") == "Success")
            #expect(execution.all("Tasks").count == 3 && execution.all("Tasks").allSatisfy { $0.text("State") == "Success" })
            #expect(execution.text("CreateTime")?.contains(" ") == true, "workflow callbacks write times with a space")
            #expect(headers(execution) == uploadHeaders)
            let tasks = try await eventually("three TaskFinish of \(run)") {
                let found = receiver.requests.compactMap { try? XMLDocumentParser.parse($0.body) }
                    .filter { $0.text("EventName") == "TaskFinish" && $0.text("JobsDetail", "Workflow", "RunId") == run }
                return found.count >= 3 ? found : nil
            }
            #expect(Set(tasks.compactMap { $0.text("JobsDetail", "Workflow", "Name") }) == ["Transcode_1", "Snapshot_1", "Animation_1"])
            #expect(tasks.allSatisfy { $0.text("JobsDetail", "Workflow", "WorkflowName") == "media-flow" })
            // A node job's Input also names the COS event that started its run, when one did.
            let inputHeaders = index == 0 ? uploadHeaders + ["eventname: cos:ObjectCreated:Put"] : []
            #expect(tasks.allSatisfy { headers($0["JobsDetail"]?["Input"]) == inputHeaders }, "each node job's Input carries them")
        }
        let failed = try await eventually("the WorkflowFinish of the failed run") {
            receiver.requests.compactMap { try? XMLDocumentParser.parse($0.body) }
                .first { $0.text("EventName") == "WorkflowFinish" && $0.text("WorkflowExecution", "RunId") == failedRun }
        }
        #expect(failed.text("WorkflowExecution", "State") == "Failed")
        #expect(receiver.requests.allSatisfy { $0.headers["webhook-signature"]?.hasPrefix("v1,") == true }, "every callback is signed")
    }
}
