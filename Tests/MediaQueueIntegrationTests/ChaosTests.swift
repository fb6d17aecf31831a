import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Faults while work flows: the real `mediaqueue serve`, broker, SQLite file and HTTP receivers.
/// Each scenario prints one line of figures (`ChaosFigures`); short here, long with
/// `Benchmarks/chaos.sh`. Faults come at random moments, but nothing is asserted about time:
/// every check waits for the work to end and then counts.
@Suite(.serialized) struct ChaosTests {
    static var binary: String? { CrashTests.binary }

    /// A serve child process on the harness's names, logging to the data folder (or `log`).
    func startServe(_ harness: ServiceHarness, _ extra: [String: String] = [:], log: String? = nil) throws -> ChildProcess {
        let environment = harness.serveEnvironment(["MEDIAQUEUE_ENABLE_NOOP": "1", "MEDIAQUEUE_LEASE_SECONDS": "5"].merging(extra) { $1 })
        return try ChildProcess(
            try #require(Self.binary), ["serve"], environment: environment, logPath: log ?? harness.configuration.dataDir + "/serve.log"
        )
    }

    /// Waits until every submission is a job in a terminal state; throws if that stalls.
    func waitUntilAllEnd(_ harness: ServiceHarness, _ store: any JobStore, total: Int) async throws {
        try await eventually("every job to end", reaches: total) {
            let counts = try await harness.stateCounts(store)
            return [JobState.success, .failed, .cancel].reduce(0) { $0 + (counts[$1] ?? 0) }
        }
    }

    /// Waits until every submission ended and was announced, then reports the figures and
    /// expects a clean run; returns the store for further checks.
    @discardableResult
    func expectEveryJobEndedAndAnnounced(
        _ harness: ServiceHarness, scenario: String, faults: String, total: Int, tally: EventTally, serve: ChildProcess
    ) async throws -> SQLiteJobStore {
        let store = try SQLiteJobStore(path: harness.configuration.databasePath)
        try await waitUntilAllEnd(harness, store, total: total)
        try await eventually("every job's TaskFinish", reaches: total) { tally.distinctJobs }
        let figures = try await ChaosFigures.measure(
            scenario: scenario, faults: faults, submitted: total, store: store, announcements: tally.announcements
        )
        figures.report()
        #expect(figures.isClean, "\(figures)\n\(serve.logTail)")
        return store
    }

    @Test(.enabled(if: ChaosTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func killingServeEveryFewSecondsLosesNothing() async throws {
        let total = ChaosScale.pick(short: 3_000, long: 10_000)
        let harness = try ServiceHarness()
        try FileManager.default.createDirectory(atPath: harness.configuration.dataDir, withIntermediateDirectories: true)
        let tally = EventTally(consumer: try await harness.subscribeToEvents(), client: harness.client)
        var serve = try startServe(harness)
        let current = Mutex(serve)
        defer { current.withLock { $0 }.terminate() }
        try await harness.waitForIntake()

        // Submissions arrive in batches while serve is killed (SIGKILL) and started again every 1 to 3 s.
        let published = Mutex(false)
        let publisher = Task {
            defer { published.withLock { $0 = true } }
            for start in stride(from: 0, to: total, by: 100) {
                try await harness.publish(identified: chaosSubmissions(start..<min(total, start + 100)))
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        var kills = 0
        repeat {
            try await Task.sleep(for: .milliseconds(Int.random(in: 1_000...3_000)))
            await serve.stop()
            kills += 1
            serve = try startServe(harness)
            current.withLock { $0 = serve }
        } while !published.withLock({ $0 }) || kills < 3
        try await publisher.value
        try await expectEveryJobEndedAndAnnounced(harness, scenario: "kill -9", faults: "\(kills) kills of serve", total: total, tally: tally, serve: serve)
    }

    @Test(.enabled(if: ChaosTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aFlappingReceiverGetsEveryCallbackWithItsIDUnchanged() async throws {
        let total = ChaosScale.pick(short: 60, long: 100)
        let flapping = total * 2
        let answered = Mutex<[String: Int]>([:])
        // 500s, hangs (until the client's timeout) and connection resets in turn, then healthy.
        let receiver = try TestHTTPReceiver { request, index in
            guard index >= flapping else { return [.status(500, body: "flapping"), .hang, .reset][index % 3] }
            answered.withLock { $0[request.headers["x-ci-job-id"] ?? "", default: 0] += 1 }
            return .status(200)
        }
        let harness = try ServiceHarness()
        try FileManager.default.createDirectory(atPath: harness.configuration.dataDir, withIntermediateDirectories: true)
        let serve = try startServe(harness, [
            "MEDIAQUEUE_CALLBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "MEDIAQUEUE_CALLBACK_TIMEOUT": ChaosScale.pick(short: "2s", long: "30s"),
            "MEDIAQUEUE_CALLBACK_RETRY_SCHEDULE": Array(repeating: "200ms", count: 40).joined(separator: ","),
        ])
        defer { serve.terminate() }
        try await harness.waitForIntake()
        let submissions = chaosSubmissions(0..<total).map { submission in
            (submission.id, submission.body.replacingOccurrences(of: "</Request>", with: "<CallBack>\(receiver.url())</CallBack></Request>"))
        }
        try await harness.publish(identified: submissions)

        try await eventually("a 2xx answer for every job's callback", reaches: total) { answered.withLock { $0.count } }
        let store = try SQLiteJobStore(path: harness.configuration.databasePath)
        var figures = try await ChaosFigures.measure(
            scenario: "flapping receiver", faults: "\(flapping) failed attempts: 500s, hangs, resets",
            submitted: total, store: store, announcements: nil
        )
        let successes = answered.withLock { $0 }
        figures.callbacksLost = total - successes.count
        figures.duplicateDeliveries = successes.values.reduce(0) { $0 + $1 - 1 }
        figures.report()
        #expect(figures.isClean, "\(figures)")
        let idsPerJob = Dictionary(grouping: receiver.requests) { $0.headers["x-ci-job-id"] ?? "" }.mapValues { Set($0.map { $0.headers["webhook-id"] }) }
        #expect(idsPerJob.count == total && idsPerJob.values.allSatisfy { $0.count == 1 }, "each job's attempts carry one webhook-id")
        #expect(try await store.deadOutbox(limit: 10).isEmpty)
    }

    @Test(.enabled(if: ChaosTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func sigtermDrainsRunningJobsAndHandsTheRestBack() async throws {
        let total = ChaosScale.pick(short: 6, long: 20)
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/long.mp4", seconds: 10, size: "640x480")
        let tally = EventTally(consumer: try await harness.subscribeToEvents(), client: harness.client)
        let environment = ["MEDIAQUEUE_MAX_RUNNING_JOBS": "2", "MEDIAQUEUE_DRAIN_TIMEOUT_SECONDS": "1"]
        let first = try startServe(harness, environment)
        defer { first.terminate() }
        try await harness.waitForIntake()
        let transcode = "<Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.265</Codec><Preset>medium</Preset></Video></Transcode>"
        try await harness.publish(identified: (0..<total).map { index in
            ("chaos-\(index)", "<Request><Tag>Transcode</Tag><Input><Object>input/long.mp4</Object></Input><Operation>\(transcode)"
                + "<Output><Object>out/\(index).mp4</Object></Output><UserData>chaos-\(index)</UserData></Operation></Request>")
        })
        let store = try SQLiteJobStore(path: harness.configuration.databasePath)
        try await eventually("every job stored and two running") {
            let counts = try await harness.stateCounts(store)
            return counts[.running] == 2 && counts.values.reduce(0, +) == total
        }

        // SIGTERM: the running jobs get the drain time, then go back to their queue; nothing is lost.
        #expect(await first.stop(SIGTERM) == 0, "a clean exit")
        let afterStop = try await harness.stateCounts(store)
        #expect(afterStop[.running] ?? 0 == 0, "no job is left running by a node that stopped: \(afterStop)")
        #expect(afterStop.values.reduce(0, +) == total)

        let second = try startServe(harness, environment)
        defer { second.terminate() }
        try await expectEveryJobEndedAndAnnounced(
            harness, scenario: "SIGTERM", faults: "SIGTERM with 2 jobs running, drain 1 s", total: total, tally: tally, serve: second
        )
        #expect(try await store.jobs(JobQuery(limit: 100)).allSatisfy { $0.state == .success })
    }

    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN): tried once, on a folder of its own.
    static let canMountTmpfs: Bool = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("mount-probe")).path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func run(_ path: String, _ arguments: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        guard getuid() == 0, run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", folder]) else { return false }
        return run("/usr/bin/umount", [folder])
    }()

    @Test(.enabled(if: ChaosTests.binary != nil && ChaosTests.canMountTmpfs, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY and the right to mount a tmpfs (root)"))
    func aFullDiskStopsTheIntakeWithoutLosingAndItResumesWhenSpaceReturns() async throws {
        let total = ChaosScale.pick(short: 400, long: 4_000)
        let harness = try ServiceHarness { configuration in
            configuration.storageDir = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("mq-storage")).path
        }
        let data = harness.configuration.dataDir
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("serve")).path + ".log"
        // Room for the first half's jobs, so that only the filler file fills it.
        _ = try await runCommand("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(ChaosScale.pick(short: 16, long: 64))m", "tmpfs", data])
        var serve: ChildProcess?
        do {
            serve = try startServe(harness, ["MEDIAQUEUE_STORAGE_DIR": harness.configuration.storageDir ?? ""], log: log)
            try await fillTheDiskAndFreeIt(harness, serve: try #require(serve), total: total, log: log)
        } catch {
            await serve?.stop()
            _ = try? await runCommand("/usr/bin/umount", ["-l", data])
            throw error
        }
        await serve?.stop()
        _ = try await runCommand("/usr/bin/umount", ["-l", data])
    }

    private func fillTheDiskAndFreeIt(_ harness: ServiceHarness, serve: ChildProcess, total: Int, log: String) async throws {
        let data = harness.configuration.dataDir
        try await harness.waitForIntake()
        let port = try await serve.apiPort()
        let store = try SQLiteJobStore(path: harness.configuration.databasePath)
        try await harness.publish(identified: chaosSubmissions(0..<(total / 2)))
        try await waitUntilAllEnd(harness, store, total: total / 2)

        // Fill the disk, then submit the rest: the intake refuses to take them and says why.
        let filler = data + "/filler"
        FileManager.default.createFile(atPath: filler, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: filler))
        let chunk = Data(count: 256 * 1024)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        try? handle.close()
        try await harness.publish(identified: chaosSubmissions((total / 2)..<total))
        let readiness = try await eventually("/readyz to say the intake cannot store") { () -> String? in
            let (status, body) = try await probeReadiness(port: port)
            return status == 503 && body.contains("cannot store submissions") ? body : nil
        }
        #expect(readiness.lowercased().contains("full"), "\(readiness)")
        #expect((try String(contentsOfFile: log, encoding: .utf8)).contains("intake could not store a batch"))

        // Space returns: the intake takes everything, every job ends once, the file is sound.
        try FileManager.default.removeItem(atPath: filler)
        try await waitUntilAllEnd(harness, store, total: total)
        try await eventually("/readyz to be 200 again") { try await probeReadiness(port: port).status == 200 }
        let figures = try await ChaosFigures.measure(
            scenario: "disk full", faults: "the data folder's \(ChaosScale.pick(short: 16, long: 64)) MiB tmpfs filled while \(total / 2) submissions arrived",
            submitted: total, store: store, announcements: nil
        )
        figures.report()
        #expect(figures.isClean, "\(figures)")
        #expect(try await store.integrityCheck() == ["ok"])
    }

    @Test(.enabled(if: ChaosTests.binary != nil && FaultBroker.isAvailable, "needs the serve binary and the fault broker of scripts/test.sh"))
    func restartingTheBrokerTwiceLosesNothing() async throws {
        let total = ChaosScale.pick(short: 2_000, long: 10_000)
        try await FaultBroker.shared.withExclusiveAccess {
            let harness = try ServiceHarness(brokerURL: FaultBroker.shared.url)
            try FileManager.default.createDirectory(atPath: harness.configuration.dataDir, withIntermediateDirectories: true)
            // A durable subscription, so that it outlives the restarts like a real subscriber's.
            let subscription = TestEnvironment.uniqueName("chaos.subscriber")
            try await harness.client.declare(AMQPTopology(
                exchanges: [AMQPExchange(name: harness.configuration.eventsExchange, type: "topic", durable: true)],
                queues: [AMQPQueue(name: subscription, durable: true)],
                bindings: [AMQPBinding(queue: subscription, exchange: harness.configuration.eventsExchange, routingKey: "job.#")]
            ))
            let tally = EventTally(consumer: try await harness.client.consume(queue: subscription, prefetch: 500), client: harness.client)
            let serve = try startServe(harness)
            defer { serve.terminate() }
            try await harness.waitForIntake()

            // The producer sends each batch until the broker confirms all of it (a batch cut by a
            // restart is sent again; its message ids make the copies one job each).
            let published = Atomic<Int>(0)
            let publisher = Task {
                for start in stride(from: 0, to: total, by: 100) {
                    let batch = chaosSubmissions(start..<min(total, start + 100))
                    while true {
                        do {
                            try await harness.client.waitUntilConnected()
                            try await harness.publish(identified: batch)
                            break
                        } catch {
                            try await Task.sleep(for: .milliseconds(200))
                        }
                    }
                    published.add(batch.count, ordering: .relaxed)
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            for third in [1, 2] {
                try await eventually("\(third)/3 of the submissions to be published") { published.load(ordering: .relaxed) >= total * third / 3 }
                try await FaultBroker.control("restart")
            }
            try await publisher.value
            try await expectEveryJobEndedAndAnnounced(
                harness, scenario: "broker restarts", faults: "2 RabbitMQ restarts", total: total, tally: tally, serve: serve
            )
        }
    }
}
