import Foundation
import FoundationNetworking
@testable import MediaQueueApp
import MediaQueueCore
@testable import MediaQueueEngine
import MediaQueueSQLite
import MediaQueueTestSupport
import Synchronization
import Testing

/// `/readyz` of the real `mediaqueue serve` binary while it drains after SIGTERM.
@Suite struct ReadinessTests {
    @Test(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aDrainingNodeIsNotReadyWhileItsJobsFinish() async throws {
        let harness = try ServiceHarness()
        let configuration = harness.configuration
        try harness.placeFakeInput()
        // An ffprobe that never ends keeps the job running, so the drain waits for it.
        let hanging = try harness.tool("hanging-ffprobe", "exec sleep 600")
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

/// A failed intake batch (a database blip) made the node not ready until its intake stored
/// another batch, for ever when the batch's messages went to another node or none came: the
/// API and console of a healthy node stayed out of service. It now counts while batches keep
/// failing, and stops once none failed for `intakeFailureShown`.
@Suite struct IntakeReadinessTests {
    @Test func aFailedIntakeBatchCountsOnlyWhileBatchesKeepFailing() async throws {
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let readiness = NodeReadiness(store: MemoryJobStore(), time: time)
        readiness.intakeWrites.record(CIError(.internalError, "the database went away"), at: time.now)
        #expect(await readiness.reasons().contains { $0.contains("the database went away") })
        time.advance(by: NodeReadiness.intakeFailureShown - .seconds(1))
        #expect(await readiness.reasons().contains { $0.contains("the intake cannot store") })
        time.advance(by: .seconds(2))
        #expect(await readiness.reasons() == [])
        readiness.intakeWrites.record(CIError(.internalError, "again"), at: time.now)
        readiness.intakeWrites.record(nil, at: time.now)
        #expect(await readiness.reasons() == [], "a stored batch clears it at once")
    }

    /// A broker refusing the intake's queue shows between the intake's tries (up to 30 s apart),
    /// apart from the store's writes: consuming again does not clear a store failure.
    @Test func aRefusedIntakeQueueShowsBetweenTriesAndApartFromTheStoresWrites() async throws {
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let readiness = NodeReadiness(store: MemoryJobStore(), time: time)
        readiness.intakeQueue.record(CIError(.invalidArgument, "PRECONDITION_FAILED"), at: time.now)
        readiness.intakeWrites.record(CIError(.internalError, "the disk is full"), at: time.now)
        time.advance(by: .seconds(29))
        readiness.intakeQueue.record(nil, at: time.now)
        #expect(await readiness.reasons().contains { $0.contains("the disk is full") })
        readiness.intakeQueue.record(CIError(.invalidArgument, "PRECONDITION_FAILED"), at: time.now)
        time.advance(by: .seconds(31))
        #expect(await readiness.reasons().contains { $0.hasPrefix("the intake cannot consume") && $0.contains("PRECONDITION_FAILED") })
    }
}

/// One TDMQ region's broker away made every relay node not ready, taking its API and console
/// out of service, though only that region's callbacks wait (in the outbox, as for an HTTP
/// receiver that is down).
@Suite struct RegionReadinessTests {
    @Test func aRegionsBrokerThatIsAwayLeavesTheNodeReady() async throws {
        let harness = try ServiceHarness { $0.mqRegions = ["gz": "amqp://guest:guest@127.0.0.1:1/"] }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }
        try await eventually("/readyz to be 200") { try await probeReadiness(port: listening).status == 200 }
    }
}

/// A node without the API role (a dispatch-only worker) had no `/healthz`, `/readyz` or
/// `/metrics`: its jobs' counters and timings never reached Prometheus, and probes had nothing
/// to ask. With `operationsAddress` it serves those three, and nothing of the API.
@Suite struct OperationsEndpointTests {
    @Test func aNodeWithoutTheAPIRoleServesHealthReadinessAndMetricsOnly() async throws {
        let harness = try ServiceHarness {
            $0.roles = [.intake, .dispatch]
            $0.operationsAddress = "127.0.0.1:0"
        }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the operations endpoints to listen") { port.withLock { $0 } }
        try await eventually("/readyz to be 200") { try await probeReadiness(port: listening).status == 200 }
        func get(_ path: String) async throws -> (Int, String) {
            let (body, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(listening)\(path)")!)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: body, as: UTF8.self))
        }
        #expect(try await get("/healthz").0 == 200)
        let (status, metrics) = try await get("/metrics")
        #expect(status == 200 && metrics.contains("mediaqueue_jobs_waiting"), "\(metrics.prefix(300))")
        #expect(try await get("/\(harness.configuration.bucket)/jobs").0 == 404, "no API on it")
    }

    /// On an API node at its connection limit, probes waited in the listen backlog behind the
    /// API's clients, and a liveness probe could fail on a node that was only busy. The
    /// operations listener is apart from that limit.
    @Test func anAPINodeAtItsConnectionLimitAnswersProbesOnItsOperationsListener() async throws {
        let reserved = try ReservedPort()
        let operations = Int(reserved.port)
        reserved.release()
        let harness = try ServiceHarness {
            $0.apiMaxConnections = 1
            $0.operationsAddress = "127.0.0.1:\(operations)"
        }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let api = try await eventually("the API to listen") { port.withLock { $0 } }
        #expect(api != operations, "onListening reports the API's address")
        try await eventually("/readyz on the operations listener") { try await probeReadiness(port: operations).status == 200 }
        // The API's one connection taken and held.
        let held = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(held) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(api).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(held, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        #expect(try await probeReadiness(port: operations).status == 200)
        let (_, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(operations)/healthz")!)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
    }
}

/// Probes that arrive while the store's write check runs wait for that one check. Each used to
/// start its own write (the reuse began only once one had ended), so parallel unauthenticated
/// probes of a slow store queued writes ahead of the intake's.
@Suite struct StoreCheckReadinessTests {
    @Test func probesAtOnceShareOneStoreWriteCheck() async throws {
        let counts = Counts()
        let readiness = NodeReadiness(
            checkWritable: {
                counts.started.add(1, ordering: .relaxed)
                // A slow store: the check ends when the test says so.
                while !counts.released.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) }
                throw CIError(.internalError, "the disk is slow")
            },
            time: ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        )
        let answers = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<20 {
                group.addTask {
                    counts.entered.add(1, ordering: .relaxed)
                    return await readiness.reasons()
                }
            }
            try await eventually("every probe to ask, and the check to start") {
                counts.entered.load(ordering: .relaxed) == 20 && counts.started.load(ordering: .relaxed) >= 1
            }
            counts.released.store(true, ordering: .relaxed)
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(counts.started.load(ordering: .relaxed) == 1)
        #expect(answers.count == 20)
        #expect(answers.allSatisfy { $0 == ["store not writable: InternalError: the disk is slow"] }, "\(answers.first ?? [])")
    }

    /// A write check that never answers (a query on a connection that died) held every later
    /// probe once they shared it: each now waits `storeCheckPatience` and reports it, and once
    /// the store answers again a new check finds it.
    @Test func aCheckThatNeverAnswersIsGivenUpAndANewOneFindsTheStoreBack() async throws {
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let counts = Counts()
        let readiness = NodeReadiness(
            checkWritable: {
                // The first check hangs until its task is given up; later ones answer.
                guard counts.started.add(1, ordering: .relaxed).newValue == 1 else { return }
                while !counts.released.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) }
            },
            time: time
        )
        let probe = Task { await readiness.reasons() }
        try await eventually("the check to start and the probe to wait") { counts.started.load(ordering: .relaxed) == 1 && time.sleeping == 1 }
        time.advance(by: NodeReadiness.storeCheckPatience)
        #expect(await probe.value == ["store not writable: the store did not answer a write within 5.0 seconds"])
        time.advance(by: .seconds(1))
        #expect(await readiness.reasons() == [], "a new check, and the store answers")
        #expect(counts.started.load(ordering: .relaxed) == 2)
        counts.released.store(true, ordering: .relaxed)
    }

    /// A store where every check hangs, whatever is asked of it: given-up checks are not piled
    /// up (on PostgreSQL each would hold a connection of the pool): while one has not ended, the
    /// next probe answers at once instead of starting a third.
    @Test func checksThatNeverEndAreNotPiledUp() async throws {
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let counts = Counts()
        let readiness = NodeReadiness(
            checkWritable: {
                counts.started.add(1, ordering: .relaxed)
                // Ignores cancellation, as a query on a dead connection may.
                while !counts.released.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(5)) }
            },
            time: time
        )
        for expectedChecks in [1, 2] {
            let probe = Task { await readiness.reasons() }
            try await eventually("check \(expectedChecks) to start and its probe to wait") {
                counts.started.load(ordering: .relaxed) == expectedChecks && time.sleeping == 1
            }
            time.advance(by: NodeReadiness.storeCheckPatience)
            #expect(await probe.value.first?.contains("did not answer") == true)
            time.advance(by: .seconds(1))
        }
        #expect(await readiness.reasons().first?.contains("did not answer") == true)
        #expect(counts.started.load(ordering: .relaxed) == 2, "no third check while the first has not ended")
        counts.released.store(true, ordering: .relaxed)
    }

    final class Counts: Sendable {
        let started = Atomic<Int>(0)
        let released = Atomic<Bool>(false)
        let entered = Atomic<Int>(0)
    }
}
