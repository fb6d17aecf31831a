import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// `kill -9` of the real `mediaqueue serve` binary in the middle of a run.
@Suite struct CrashTests {
    static var binary: String? { ProcessInfo.processInfo.environment["MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY"] }

    @Test(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func afterAKillEveryJobEndsExactlyOnceAndNoneIsLost() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 3)
        let events = try await harness.subscribeToEvents()
        let configuration = harness.configuration
        let environment = harness.serveEnvironment(["MEDIAQUEUE_MAX_RUNNING_JOBS": "2", "MEDIAQUEUE_LEASE_SECONDS": "5"])
        let log = configuration.dataDir + "/serve.log"
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true)
        let total = 40
        let binary = try #require(Self.binary)
        let first = try ChildProcess(binary, ["serve"], environment: environment, logPath: log)
        try await harness.waitForIntake()
        try await harness.publish(batch: (0..<total).map { snapshotRequest(output: "out/\($0)/s-${Number}.jpg", count: 2, userData: "job-\($0)") })

        var received = try await harness.receive(8, from: events)
        await first.stop()  // SIGKILL: no shutdown, leases left behind, maybe a job mid-ffmpeg
        let process = try ChildProcess(binary, ["serve"], environment: environment, logPath: log)
        defer { Task { await process.stop() } }

        // At least once: every job's event arrives; a job re-run after the crash may announce twice.
        // They are taken (and acked) as they come: deliveries left unacked past the broker's
        // consumer timeout would go with the test's auto-delete queue.
        let before = received
        received += try await harness.receive(from: events) { more in
            Set((before + more).compactMap { $0.xml?["JobsDetail"]?.text("JobId") }).count >= total
        }
        let store = try SQLiteJobStore(path: configuration.databasePath)
        try await eventually("every job to end", reaches: total) {
            try await store.jobs(JobQuery(states: [.success, .failed, .cancel], limit: 1000)).count
        }
        let jobs = try await store.jobs(JobQuery(limit: 1000))
        #expect(jobs.count == total, "no job was lost or created twice")
        #expect(jobs.allSatisfy { $0.state == .success }, "\(jobs.filter { $0.state != .success }.map { "\($0.id) \($0.state) \($0.message)" }) \(process.logTail)")
        let announced = Set(received.compactMap { $0.xml?["JobsDetail"]?.text("JobId") })
        #expect(announced == Set(jobs.map(\.id.rawValue)))
    }

    /// A job that kills its process whenever it starts (here the `job-starting` fault point; in
    /// life an input that crashes beyond what a worker survives): after the last start allowed,
    /// the next process ends it as failed, with its callback, instead of dying in turn.
    @Test(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aJobWhoseProcessDiesInEveryStartFailsAfterTheLastOne() async throws {
        let harness = try ServiceHarness()
        let events = try await harness.subscribeToEvents()
        let configuration = harness.configuration
        let log = configuration.dataDir + "/serve.log"
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true)
        let binary = try #require(Self.binary)
        let deadly = harness.serveEnvironment([
            "MEDIAQUEUE_LEASE_SECONDS": "5", "MEDIAQUEUE_MAX_JOB_ATTEMPTS": "2", "MEDIAQUEUE_FAULT_POINT": "job-starting",
        ])
        for start in 1...2 {
            let process = try ChildProcess(binary, ["serve"], environment: deadly, logPath: log)
            if start == 1 {
                try await harness.waitForIntake()
                try await harness.publish(snapshotRequest(userData: "poison"), messageID: "poison-1")
            }
            // Start 2 comes once start 1's lease has expired.
            #expect(await process.waitForExit() == SIGKILL, "start \(start) ended its process: \(process.logTail)")
        }

        let process = try ChildProcess(binary, ["serve"], environment: deadly, logPath: log)
        defer { Task { await process.stop() } }
        let event = try #require(try await harness.receive(1, from: events).first?.xml)
        #expect(event.text("JobsDetail", "State") == "Failed")
        #expect(event.text("JobsDetail", "Code") == "WorkerCrashed")
        #expect(event.text("JobsDetail", "Message")?.contains("started 2 times") == true, "\(event.xmlString())")
        let store = try SQLiteJobStore(path: configuration.databasePath)
        let jobs = try await store.jobs(JobQuery(limit: 10))
        #expect(jobs.count == 1 && jobs.first?.state == .failed, "one job, failed, not a copy per start")
    }
}

/// What a process that died mid-job left in the storage goes when a process starts again.
@Suite struct AbandonedStagingServiceTests {
    @Test func aStartRemovesStagingFoldersLeftLongAgo() async throws {
        let harness = try ServiceHarness()
        let left = harness.bucketRoot + "/out/" + ObjectKey.reservedPrefix + "job-of-a-dead-process"
        try FileManager.default.createDirectory(atPath: left, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: left + "/partial.mp4", contents: Data("partial".utf8)))
        let longAgo = Date().addingTimeInterval(-Double(harness.configuration.jobTimeoutSeconds + 7200))
        for path in [left, left + "/partial.mp4"] { try FileManager.default.setAttributes([.modificationDate: longAgo], ofItemAtPath: path) }
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await eventually("the abandoned staging folder to be removed") { !FileManager.default.fileExists(atPath: left) }
    }
}
