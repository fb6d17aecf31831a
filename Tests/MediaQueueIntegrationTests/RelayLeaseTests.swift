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
        /// Holds the events' subscription: `harness`, or one on the broker the events go to.
        let subscriber: ServiceHarness
        let events: AMQPConsumer
        let dispatch: ChildProcess
        let relays: [ChildProcess]
        let store: SQLiteJobStore

        func stop() async {
            for process in relays + [dispatch] { await process.stop() }
        }
    }

    /// `relayLease`: MEDIAQUEUE_RELAY_LEASE_SECONDS (the default where no relay dies).
    /// `eventsBroker`: where the events go (region `sh`, the default rule's), when not the
    /// harness's broker. `beforeRelays` runs once the intake consumes, before the relays start.
    func start(
        relayLease: Int? = nil, eventsBroker: String? = nil,
        beforeRelays: (ServiceHarness, SQLiteJobStore) async throws -> Void = { _, _ in }
    ) async throws -> Cluster {
        let harness = try ServiceHarness()
        let configuration = harness.configuration
        let subscriber = try eventsBroker.map { url in try ServiceHarness(brokerURL: url) { $0.eventsExchange = configuration.eventsExchange } } ?? harness
        let events = try await subscriber.subscribeToEvents()
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true)
        var extra = ["MEDIAQUEUE_ENABLE_NOOP": "1", "MEDIAQUEUE_MAX_RUNNING_JOBS": "64", "MEDIAQUEUE_QUEUE_MAX_CONCURRENT": "64"]
        if let relayLease { extra["MEDIAQUEUE_RELAY_LEASE_SECONDS"] = String(relayLease) }
        if let eventsBroker { extra["MEDIAQUEUE_MQ_REGIONS"] = "sh=\(eventsBroker)" }
        let environment = harness.serveEnvironment(extra)
        let binary = try #require(CrashTests.binary)
        func serve(_ role: String) throws -> ChildProcess {
            try ChildProcess(binary, ["serve", "--role", role], environment: environment, logPath: configuration.dataDir + "/\(role).log")
        }
        let dispatch = try serve("intake,dispatch")
        try await harness.waitForIntake()
        let store = try SQLiteJobStore(path: configuration.databasePath)
        try await beforeRelays(harness, store)
        let relays = [try serve("relay"), try serve("relay")]
        return Cluster(harness: harness, subscriber: subscriber, events: events, dispatch: dispatch, relays: relays, store: store)
    }

    static func names(_ count: Int = jobs) -> [String] {
        (0..<count).map { "lease-\($0)" }
    }

    @discardableResult
    func publishJobs(_ harness: ServiceHarness, count: Int = jobs) async throws -> [String] {
        let names = Self.names(count)
        try await harness.publish(batch: names.map {
            "<Request><Tag>Noop</Tag><Input><Object>none</Object></Input><Operation><UserData>\($0)</UserData></Operation></Request>"
        })
        return names
    }

    /// The TDMQ deliveries not yet recorded, due or not.
    func unrecorded(_ store: SQLiteJobStore) async throws -> [OutboxEntry] {
        try await store.dueOutbox(.tdmq, now: Timestamp(seconds: Int64.max / 2000), limit: 10_000)
    }

    func allRecorded(_ store: SQLiteJobStore) async throws {
        try await eventually("every delivery to be recorded") { try await unrecorded(store).isEmpty }
    }

    /// Two relays never both take a delivery, so each event goes out once. The one repeat a
    /// broker forces is a publish whose confirm never came (its connection dropped, as on a
    /// loaded machine): it is retried with the same message-id, and the store shows the failed
    /// attempt. The lease is long here so that a relay held up by a busy machine keeps its own.
    @Test func twoRelaysPublishEachEventExactlyOnce() async throws {
        let cluster = try await start(relayLease: 120)
        defer { Task { await cluster.stop() } }
        let names = try await publishJobs(cluster.harness)
        let received = try await cluster.subscriber.receive(from: cluster.events) { messages in
            Set(messages.compactMap(Self.jobID)).count >= Self.jobs
        }
        try await allRecorded(cluster.store)
        await cluster.stop()
        // Every event was confirmed before it was recorded, so all are in the subscriber's queue
        // by now; a marker published after them brings any that came twice.
        try await cluster.subscriber.publishMarker("job.marker")
        let events = received + (try await cluster.subscriber.receive(until: "job.marker", from: cluster.events))
        #expect(Set(events.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") }) == Set(names))

        try await expectEachPublishedOnceUnlessAnAttemptFailed(events, store: cluster.store)
    }

    /// Events published more than once must each have a failed attempt in the store: a publish
    /// whose confirm never came is retried, which no lease can prevent; any other repeat means
    /// two relays sent the same delivery.
    func expectEachPublishedOnceUnlessAnAttemptFailed(_ events: [AMQPMessage], store: SQLiteJobStore) async throws {
        var repeatedWithoutCause: [String] = []
        for (id, copies) in Dictionary(grouping: events.compactMap(Self.jobID), by: { $0 }) where copies.count > 1 {
            let job = try #require(try await store.job(id: JobID(rawValue: id)))
            let deliveries = try await store.deliveries(of: job)
            if !deliveries.contains(where: { $0.entry.lastError != nil }) { repeatedWithoutCause.append(id) }
        }
        #expect(repeatedWithoutCause.isEmpty, "\(repeatedWithoutCause.count) events published more than once with no failed attempt, e.g. \(repeatedWithoutCause.prefix(3))")
    }

    /// RabbitMQ under a memory alarm blocks the relays' publishes, unconfirmed, for several
    /// leases; the relay holding them renews its leases, so the other never takes them, and once
    /// the alarm clears each event goes out once. The events go to the fault broker (region `sh`),
    /// the submissions through the shared one; all deliveries wait in the outbox before the
    /// relays start, so that one relay leases them all in its first read.
    @Test(.enabled(if: FaultBroker.isAvailable, "needs the fault broker (scripts/test.sh starts it)"))
    func relaysBlockedByTheBrokerForSeveralLeasesStillPublishEachEventOnce() async throws {
        let count = 300, lease = 8
        try await FaultBroker.shared.withExclusiveAccess {
            do {
                let cluster = try await start(relayLease: lease, eventsBroker: FaultBroker.shared.url) { harness, store in
                    try await publishJobs(harness, count: count)
                    try await eventually("every job's event in the outbox") { try await unrecorded(store).count == count }
                    try await FaultBroker.control("block-publishers")
                }
                defer { Task { await cluster.stop() } }
                let relaysStarted = SystemTimeSource().now
                // Held past two leases, and none sent meanwhile: without renewing, the first
                // relay's lease ends after one lease and the second's after about two, when both
                // are stuck in their blocked publishes and nothing moves the lease ends again.
                try await eventually("leases renewed while the broker blocks the relay") {
                    let held = try await unrecorded(cluster.store)
                    return held.count == count && held.allSatisfy { $0.nextAttempt >= relaysStarted + .seconds(3 * lease) }
                }
                try await FaultBroker.control("unblock-publishers")
                let received = try await cluster.subscriber.receive(from: cluster.events) { messages in
                    Set(messages.compactMap(Self.jobID)).count >= count
                }
                try await allRecorded(cluster.store)
                await cluster.stop()
                try await cluster.subscriber.publishMarker("job.marker")
                let events = received + (try await cluster.subscriber.receive(until: "job.marker", from: cluster.events))
                #expect(Set(events.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") }) == Set(Self.names(count)))
                try await expectEachPublishedOnceUnlessAnAttemptFailed(events, store: cluster.store)
            } catch {
                // A broker left blocked would hold every later test's publishes.
                do { try await FaultBroker.control("unblock-publishers") } catch { try? await FaultBroker.control("restart") }
                throw error
            }
        }
    }

    static func jobID(_ message: AMQPMessage) -> String? {
        message.xml?["JobsDetail"]?.text("JobId")
    }

    @Test func aRelayKilledMidRunLeavesItsDeliveriesToTheOtherWithTheSameMessageID() async throws {
        let cluster = try await start(relayLease: 3)
        defer { Task { await cluster.stop() } }
        let names = try await publishJobs(cluster.harness)
        let early = try await cluster.subscriber.receive(Self.jobs / 4, from: cluster.events)
        await cluster.relays[0].stop()  // SIGKILL: its leased deliveries wait for their leases to end

        let later = try await cluster.subscriber.receive(from: cluster.events) { messages in
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
