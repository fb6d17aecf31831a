import Foundation
import FoundationNetworking
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import Testing

/// SIGTERM to the real `mediaqueue serve` while its broker is away and a job's TaskFinish is on
/// its way to it. The node stops after the relay's grace, not at the service group's backstop
/// (the drain time + 30 s, set here far past the test's time limit, which also covers waiting
/// for the other fault-broker tests), and the event stays in the outbox, to go out once a node
/// reaches the broker again.
@Suite(.timeLimit(.minutes(15)))
struct ShutdownWithBrokerAwayTests {
    /// A real `mediaqueue serve` on `harness`'s broker and data folder, with `extra` in its
    /// environment and a drain time that puts the service group's backstop past the suite's time
    /// limit, logging to `log` in the data folder.
    static func serve(_ harness: ServiceHarness, _ extra: [String: String] = [:], log: String) throws -> ChildProcess {
        try FileManager.default.createDirectory(atPath: harness.configuration.dataDir, withIntermediateDirectories: true)
        return try ChildProcess(
            try #require(CrashTests.binary), ["serve"],
            environment: harness.serveEnvironment(extra.merging(["MEDIAQUEUE_DRAIN_TIMEOUT_SECONDS": "3600"]) { $1 }),
            logPath: harness.configuration.dataDir + "/" + log
        )
    }

    @Test(.enabled(if: CrashTests.binary != nil && FaultBroker.isAvailable, "needs the serve binary and the fault broker of scripts/test.sh"))
    func aNodeWhoseBrokerIsAwayStopsOnSIGTERMWithoutWaitingForIt() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let harness = try ServiceHarness(brokerURL: FaultBroker.shared.url)
            let configuration = harness.configuration
            let serve = try Self.serve(harness, ["MEDIAQUEUE_ENABLE_NOOP": "1", "MEDIAQUEUE_ANONYMOUS": "1"], log: "serve.log")
            defer { serve.terminate() }
            let port = try await serve.apiPort()
            try await eventually("ready") { try await probeReadiness(port: port).status == 200 }

            try await FaultBroker.control("stop")
            do {
                try await eventually("not ready without its broker") { try await probeReadiness(port: port).status == 503 }
                // Stored through the API, the job runs and ends while the broker is away; its
                // TaskFinish waits for the broker in the relay's publish.
                var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/\(configuration.bucket)/jobs")!)
                request.httpMethod = "POST"
                request.httpBody = Data("<Request><Tag>Noop</Tag><Input><Object>in.mp4</Object></Input><Operation/></Request>".utf8)
                let (data, _) = try await URLSession.shared.data(for: request)
                let answer = String(decoding: data, as: UTF8.self)
                let id = try #require(answer.firstMatch(of: /<JobId>([^<]+)<\/JobId>/).map { String($0.1) }, "\(answer)")
                let store = try SQLiteJobStore(path: configuration.databasePath)
                try await eventually("the job ended") { try await store.job(id: JobID(rawValue: id))?.state == .success }

                // Returns once the process is gone.
                #expect(await serve.stop(SIGTERM) == 0, "a clean exit")
                let outbox = try await store.outboxStatistics()
                #expect(outbox.pending[.tdmq] == 1, "the TaskFinish waits in the outbox: \(outbox)")
                #expect(outbox.dead[.tdmq, default: 0] == 0, "not counted as a failed attempt: \(outbox)")
            } catch {
                try await FaultBroker.control("start")
                throw error
            }
            try await FaultBroker.control("start")
        }
    }

    /// SIGTERM while the broker blocks the node's publishes (a memory alarm) and a refused
    /// submission's dead letter waits for its confirm: the node stops after the intake's grace,
    /// without the service group's backstop, and the submission is back in its queue, neither
    /// dropped nor settled as dead-lettered. The broker does not read a connection it blocks, so
    /// the consumer's cancel and the connection's close do not wait for its answers (they would
    /// until the AMQP RPC timeout, and then drop the connection).
    @Test(.enabled(if: CrashTests.binary != nil && FaultBroker.isAvailable, "needs the serve binary and the fault broker of scripts/test.sh"))
    func aNodeWhoseDeadLetterTheBrokerHoldsBackStopsOnSIGTERMAndKeepsTheSubmission() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let harness = try ServiceHarness(brokerURL: FaultBroker.shared.url)
            let configuration = harness.configuration
            func serve(_ run: Int) throws -> ChildProcess { try Self.serve(harness, log: "serve-\(run).log") }
            // A first run declares the intake's queues; the submission waits there for the second.
            let first = try serve(1)
            defer { first.terminate() }
            try await harness.waitForIntake()
            await first.stop(SIGTERM)
            try await harness.publish("<Request><Tag>NoSuchTag</Tag><Input><Object>in.mp4</Object></Input></Request>", messageID: "refused")

            try await FaultBroker.control("block-publishers")
            do {
                let second = try serve(2)
                defer { second.terminate() }
                // The node took the submission and refused it; its dead letter is blocked.
                try await FaultBroker.control("wait-blocked-publisher")
                // Returns once the process is gone.
                #expect(await second.stop(SIGTERM) == 0, "a clean exit")
            } catch {
                try await FaultBroker.control("unblock-publishers")
                throw error
            }
            try await FaultBroker.control("unblock-publishers")
            let intake = try await harness.client.queueStatus(configuration.intakeQueue)
            #expect(intake.messages == 1 && intake.consumers == 0, "the submission is back in its queue: \(intake)")
            let log = try String(contentsOfFile: configuration.dataDir + "/serve-2.log", encoding: .utf8)
            #expect(log.contains("intake could not dead-letter submissions"), "\(log)")
            #expect(!log.contains("AMQP connection lost"), "no method waited for the RPC timeout: \(log)")
        }
    }
}
