import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// Relays in processes of their own on one store, as scale-out runs them: two real
/// `mediaqueue serve --role relay` and one `serve --role intake,dispatch` on one data folder.
/// Each relay leases what it sends, so each event goes out once; a relay killed mid-run leaves
/// its leased deliveries to the other once their leases end.
@Suite(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
struct RelayLeaseTests {
    static let jobs = 2000

    /// The three processes, the subscriber and the store they share.
    struct Cluster {
        let harness: ServiceHarness
        let events: AMQPConsumer
        let dispatch: ChildProcess
        let relays: [ChildProcess]
        let store: SQLiteJobStore

        func stop() async {
            for process in relays + [dispatch] { await process.stop() }
        }
    }

    /// `relayLease`: MEDIAQUEUE_RELAY_LEASE_SECONDS (the default where no relay dies).
    func start(relayLease: Int? = nil) async throws -> Cluster {
        let harness = try ServiceHarness()
        let events = try await harness.subscribeToEvents()
        let configuration = harness.configuration
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true)
        var extra = ["MEDIAQUEUE_ENABLE_NOOP": "1", "MEDIAQUEUE_MAX_RUNNING_JOBS": "64", "MEDIAQUEUE_QUEUE_MAX_CONCURRENT": "64"]
        if let relayLease { extra["MEDIAQUEUE_RELAY_LEASE_SECONDS"] = String(relayLease) }
        let environment = harness.serveEnvironment(extra)
        let binary = try #require(CrashTests.binary)
        func serve(_ role: String) throws -> ChildProcess {
            try ChildProcess(binary, ["serve", "--role", role], environment: environment, logPath: configuration.dataDir + "/\(role).log")
        }
        let dispatch = try serve("intake,dispatch")
        try await harness.waitForIntake()
        let relays = [try serve("relay"), try serve("relay")]
        return Cluster(
            harness: harness, events: events, dispatch: dispatch, relays: relays,
            store: try SQLiteJobStore(path: configuration.databasePath)
        )
    }

    func publishJobs(_ harness: ServiceHarness) async throws -> [String] {
        let names = (0..<Self.jobs).map { "lease-\($0)" }
        try await harness.publish(batch: names.map {
            "<Request><Tag>Noop</Tag><Input><Object>none</Object></Input><Operation><UserData>\($0)</UserData></Operation></Request>"
        })
        return names
    }

    func allRecorded(_ store: SQLiteJobStore) async throws {
        try await eventually("every delivery to be recorded") {
            try await store.dueOutbox(.tdmq, now: Timestamp(seconds: Int64.max / 2000), limit: 1).isEmpty
        }
    }

    /// Two relays never both take a delivery, so each event goes out once. The one repeat a
    /// broker forces is a publish whose confirm never came (its connection dropped, as on a
    /// loaded machine): it is retried with the same message-id, and the store shows the failed
    /// attempt. The lease is long here so that a relay held up by a busy machine keeps its own.
    @Test func twoRelaysPublishEachEventExactlyOnce() async throws {
        let cluster = try await start(relayLease: 120)
        defer { Task { await cluster.stop() } }
        let names = try await publishJobs(cluster.harness)
        let received = try await cluster.harness.receive(from: cluster.events) { messages in
            Set(messages.compactMap(Self.jobID)).count >= Self.jobs
        }
        try await allRecorded(cluster.store)
        await cluster.stop()
        // Every event was confirmed before it was recorded, so all are in the subscriber's queue
        // by now; a marker published after them brings any that came twice.
        try await cluster.harness.publishMarker("job.marker")
        let events = received + (try await cluster.harness.receive(until: "job.marker", from: cluster.events))
        #expect(Set(events.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") }) == Set(names))

        var repeatedWithoutCause: [String] = []
        for (id, copies) in Dictionary(grouping: events.compactMap(Self.jobID), by: { $0 }) where copies.count > 1 {
            let job = try #require(try await cluster.store.job(id: JobID(rawValue: id)))
            let deliveries = try await cluster.store.deliveries(of: job)
            if !deliveries.contains(where: { $0.entry.lastError != nil }) { repeatedWithoutCause.append(id) }
        }
        #expect(repeatedWithoutCause.isEmpty, "\(repeatedWithoutCause.count) events published more than once with no failed attempt, e.g. \(repeatedWithoutCause.prefix(3))")
    }

    static func jobID(_ message: AMQPMessage) -> String? {
        message.xml?["JobsDetail"]?.text("JobId")
    }

    @Test func aRelayKilledMidRunLeavesItsDeliveriesToTheOtherWithTheSameMessageID() async throws {
        let cluster = try await start(relayLease: 3)
        defer { Task { await cluster.stop() } }
        let names = try await publishJobs(cluster.harness)
        let early = try await cluster.harness.receive(Self.jobs / 4, from: cluster.events)
        await cluster.relays[0].stop()  // SIGKILL: its leased deliveries wait for their leases to end

        let later = try await cluster.harness.receive(from: cluster.events) { messages in
            Set((early + messages).compactMap(Self.jobID)).count >= Self.jobs
        }
        let received = early + later
        try await allRecorded(cluster.store)
        await cluster.stop()

        #expect(Set(received.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") }) == Set(names), "at least once")
        // A delivery sent again (the killed relay's unrecorded ones) carries its first message-id.
        var messageIDs: [String: Set<String>] = [:]
        for message in received {
            guard let job = Self.jobID(message) else { continue }
            messageIDs[job, default: []].insert(message.properties.messageID ?? "")
        }
        #expect(messageIDs.count == Self.jobs)
        #expect(messageIDs.values.allSatisfy { $0.count == 1 && $0.first?.isEmpty == false })
    }
}
