import Foundation
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// SIGKILL between an upload and its workflow run: the upload (`mediaqueue objects put`) dies
/// right after publishing the object, before the run exists; `serve` replays the arrival once,
/// and a `serve` killed while the run's first job waits leaves exactly that one run.
@Suite struct WorkflowCrashTests {
    static let topology = """
        <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>End</Snapshot_1></Dependencies><Nodes>
        <Start><Type>Start</Type><Input><ObjectPrefix>in/</ObjectPrefix></Input></Start>
        <Snapshot_1><Type>Snapshot</Type><Operation><Snapshot><Mode>Interval</Mode><Start>0</Start><Count>1</Count></Snapshot>
        <Output><Object>out/${RunId}/shot-${Number}.jpg</Object></Output></Operation></Snapshot_1></Nodes></Topology>
        """

    @Test(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aKillBetweenAnUploadAndItsRunLeavesExactlyOneRun() async throws {
        let harness = try ServiceHarness()
        let configuration = harness.configuration
        let video = configuration.dataDir + "-clip.mp4"
        try await SampleMedia.makeVideo(at: video, seconds: 2)
        let store = try SQLiteJobStore(path: configuration.databasePath)
        let queue = try await store.ensureDefaultQueue(bucket: configuration.bucket, template: configuration.defaultQueueTemplate(now: SystemTimeSource().now))
        let now = SystemTimeSource().now
        let workflowID = "w" + randomHex32()
        try await store.createDefinition(Definition(
            id: workflowID, kind: .workflow, bucket: configuration.bucket, name: "crash", label: WorkflowState.active,
            body: try XMLDocumentParser.parse(Self.topology), createTime: now, updateTime: now
        ))
        func runs(_ object: String) async throws -> [WorkflowRun] {
            var query = RunQuery(bucket: configuration.bucket)
            query.object = object
            return try await store.runs(query)
        }

        // The upload dies after publishing, before its run: the object is there, the run is not.
        let killed = try await harness.runCLI(
            ["objects", "put", video, "in/a.mp4"], environment: ["MEDIAQUEUE_FAULT_POINT": "upload-published"], allowFailure: true
        )
        #expect(killed.status != 0 && !killed.stdout.contains("put in/a.mp4"), "the upload was killed: \(killed)")
        #expect(FileManager.default.fileExists(atPath: harness.bucketRoot + "/in/a.mp4"))
        #expect(try await runs("in/a.mp4").isEmpty)
        #expect(try await store.arrivals(before: SystemTimeSource().now + .seconds(1), limit: 10).map(\.key) == ["in/a.mp4"])

        // A serve replays the arrival into one run; it is killed while that run's job waits in
        // the paused queue, and the next one runs it.
        var paused = queue
        paused.state = .paused
        try await store.updateQueue(paused)
        let log = configuration.dataDir + "/serve.log"
        let binary = try #require(CrashTests.binary)
        let environment = harness.serveEnvironment(["MEDIAQUEUE_WORKFLOW_ARRIVAL_GRACE_SECONDS": "1", "MEDIAQUEUE_LEASE_SECONDS": "5"])
        let first = try ChildProcess(binary, ["serve"], environment: environment, logPath: log)
        let replayed = try await eventually("the arrival to be replayed into a run") { try await runs("in/a.mp4").first }
        await first.stop()
        let serve = try ChildProcess(binary, ["serve"], environment: environment, logPath: log)
        defer { Task { await serve.stop() } }
        var enabled = paused
        enabled.state = .active
        try await store.updateQueue(enabled)
        let done = try await eventually("the replayed run to end") { () -> WorkflowRun? in
            guard let run = try await store.run(id: replayed.id), run.state != .running else { return nil }
            return run
        }
        #expect(done.state == .success, "\(done.tasks) \(serve.logTail)")
        #expect(FileManager.default.fileExists(atPath: harness.bucketRoot + "/out/\(replayed.id)/shot-0.jpg"))

        // Another upload, whole this time, runs through the same serve: by its end the replay
        // loop has looked again, and the first object still has exactly one run.
        _ = try await harness.cli(["objects", "put", video, "in/b.mp4"])
        let second = try await eventually("the second upload's run to end") { () -> WorkflowRun? in
            guard let run = try await runs("in/b.mp4").first, run.state != .running else { return nil }
            return run
        }
        #expect(second.state == .success)
        #expect(try await runs("in/a.mp4").count == 1, "the replayed arrival started one run, not two")
        #expect(try await store.arrivals(before: SystemTimeSource().now + .seconds(60), limit: 10).isEmpty, "no arrival is left")

        // The same from the shell: list, trigger, follow.
        #expect(try await harness.cli(["workflows", "list"]).contains("\(workflowID)\tActive\tcrash\tin/"))
        let triggered = try await harness.cli(["workflows", "trigger", workflowID, "in/a.mp4"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(triggered.hasPrefix("i") && triggered.count == 33, "\(triggered)")
        _ = try await eventually("the triggered run to end") { try await store.run(id: triggered).flatMap { $0.state == .running ? nil : $0 } }
        let listing = try await harness.cli(["workflows", "executions", workflowID])
        #expect(listing.split(separator: "\n").count == 3 && listing.hasPrefix(triggered + "\tSuccess"), "\(listing)")
        let tasks = try await harness.cli(["workflows", "executions", "--run", triggered])
        #expect(tasks.contains("  Snapshot_1\tSnapshot\tSuccess\tj"), "\(tasks)")
        let missing = try await harness.runCLI(["workflows", "trigger", workflowID, "in/none.mp4"], allowFailure: true)
        #expect(missing.status != 0 && missing.stderr.contains("NoSuchKey"), "\(missing)")
    }
}
