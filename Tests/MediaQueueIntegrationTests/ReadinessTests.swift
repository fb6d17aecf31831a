import Foundation
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import Testing

/// `/readyz` of the real `mediaqueue serve` binary while it drains after SIGTERM.
@Suite struct ReadinessTests {
    @Test(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aDrainingNodeIsNotReadyWhileItsJobsFinish() async throws {
        let harness = try ServiceHarness()
        let configuration = harness.configuration
        try FileManager.default.createDirectory(atPath: harness.bucketRoot + "/input", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: harness.bucketRoot + "/input/a.mp4", contents: Data("not really".utf8))
        // An ffprobe that never ends keeps the job running, so the drain waits for it.
        let hanging = configuration.dataDir + "/hanging-ffprobe"
        _ = try await runCommand("/bin/sh", ["-c", "printf '#!/bin/sh\\nexec sleep 600\\n' > \"$1\" && chmod 755 \"$1\"", "sh", hanging])
        let log = configuration.dataDir + "/serve.log"
        let binary = try #require(CrashTests.binary)
        let serve = try ChildProcess(
            binary, ["serve"], environment: harness.serveEnvironment(["MEDIAQUEUE_FFPROBE": hanging, "MEDIAQUEUE_FFMPEG": hanging]), logPath: log
        )
        defer { Task { await serve.stop() } }
        let port = try await serve.apiPort()
        func probe() async throws -> (status: Int, body: String) { try await probeReadiness(port: port) }
        try await harness.waitForIntake()
        try await eventually("ready") { try await probe().status == 200 }

        try await harness.publish(mediaInfoRequest(userData: "long"))
        let store = try SQLiteJobStore(path: configuration.databasePath)
        try await eventually("the job to run") { try await store.jobs(JobQuery(states: [.running], limit: 5)).count == 1 }
        kill(serve.pid, SIGTERM)
        let draining = try await eventually("not ready while draining") { () -> String? in
            let answer = try await probe()
            return answer.status == 503 ? answer.body : nil
        }
        #expect(draining == "not ready: draining: the node is shutting down\n")
        #expect(try await store.jobs(JobQuery(states: [.running], limit: 5)).count == 1, "the job still runs: the node drains")
    }
}
