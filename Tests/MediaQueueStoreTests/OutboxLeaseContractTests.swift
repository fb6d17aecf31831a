import Foundation
import Logging
import MediaQueueCore
@testable import MediaQueuePostgres
import MediaQueueSQLite
import MediaQueueTestSupport
import PostgresNIO
import Testing

/// The relays' lease on what they send (`leaseOutbox`), against the memory store, a real SQLite
/// file and a real PostgreSQL database: of relays reading at once each delivery goes to one, a
/// dead relay's deliveries go to another once its lease ends, and a recorded attempt ends the
/// lease.
@Suite struct OutboxLeaseContractTests {
    /// When the relays look: every delivery is due by then.
    static let now = Timestamp(seconds: 1_700_000_010)

    /// `count` finished jobs, each with a TDMQ delivery, the first the oldest (one a millisecond).
    func deliveries(_ store: any JobStore, count: Int) async throws -> [OutboxEntry] {
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        for index in 0..<count { _ = try await submitOne(store, newJob(queue, userData: "\(index)")) }
        let jobs = try await store.claimJobs(owner: "n", now: Self.now, leaseUntil: Self.now + .seconds(30), limit: count)
        let target = CallbackTarget(destination: .mq(mode: .topic, name: "events", region: ""), format: .xml)
        var entries: [OutboxEntry] = []
        for (index, var job) in jobs.enumerated() {
            job.state = .success
            let entry = OutboxEntry.taskFinish(job, target: target, formatting: CIFormatting(), now: Self.now - .seconds(10) + .milliseconds(index))
            #expect(try await store.finish(job, owner: "n", outbox: [entry]))
            entries.append(entry)
        }
        return entries
    }

    @Test(arguments: StoreKind.allCases)
    func aLeasedDeliveryIsNotTakenAgainUntilItsLeaseEnds(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let entries = try await deliveries(store, count: 3)
        let until = Self.now + .seconds(60)

        let first = try await store.leaseOutbox(.tdmq, now: Self.now, until: until, limit: 2)
        #expect(first.map(\.id) == entries.prefix(2).map(\.id), "oldest first, up to the limit")
        #expect(first.allSatisfy { $0.nextAttempt == until })
        let second = try await store.leaseOutbox(.tdmq, now: Self.now, until: until, limit: 10)
        #expect(second.map(\.id) == [entries[2].id], "only what the first lease left")
        #expect(try await store.leaseOutbox(.tdmq, now: until - .milliseconds(1), until: until + .seconds(60), limit: 10).isEmpty)
        #expect(try await store.leaseOutbox(.url, now: Self.now, until: until, limit: 10).isEmpty)

        // The relay that took them died: at the lease's end another takes them, attempts unchanged.
        let takenOver = try await store.leaseOutbox(.tdmq, now: until, until: until + .seconds(60), limit: 10)
        #expect(Set(takenOver.map(\.id)) == Set(entries.map(\.id)))
        #expect(takenOver.allSatisfy { $0.attempts == 0 })
    }

    @Test(arguments: StoreKind.allCases)
    func aRecordedAttemptEndsTheLease(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let entries = try await deliveries(store, count: 2)
        let until = Self.now + .seconds(60)
        _ = try await store.leaseOutbox(.tdmq, now: Self.now, until: until, limit: 10)

        #expect(try await store.markAttemptFailed(entries[0].id, error: "broker down", nextAttempt: Self.now + .seconds(5), leaseEnd: until))
        try await store.markDelivered([entries[1].id], at: Self.now)
        let retried = try await store.leaseOutbox(.tdmq, now: Self.now + .seconds(5), until: until, limit: 10)
        #expect(retried.map(\.id) == [entries[0].id], "due at its next attempt; the delivered one never again")
        #expect(retried.first?.attempts == 1)
        // A relay whose lease ended records its failure after another relay delivered it.
        #expect(try await !store.markAttemptFailed(entries[1].id, error: "late", nextAttempt: nil, leaseEnd: until))
        #expect(try await store.deadOutbox(limit: 10).isEmpty, "a delivered delivery stays delivered")
    }

    /// A relay's failed attempts are recorded together: each as its own lease allows.
    @Test(arguments: StoreKind.allCases)
    func failedAttemptsRecordedTogetherEachFollowTheirOwnLease(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let entries = try await deliveries(store, count: 4)
        let (short, lease, later) = (Self.now + .seconds(30), Self.now + .seconds(60), Self.now + .seconds(120))
        _ = try await store.leaseOutbox(.tdmq, now: Self.now, until: lease, limit: 3)
        _ = try await store.leaseOutbox(.tdmq, now: Self.now, until: short, limit: 10)
        try await store.markDelivered([entries[2].id], at: Self.now)
        // Another relay took the last one after this relay's (shorter) lease on it ended.
        #expect(try await store.leaseOutbox(.tdmq, now: short, until: later, limit: 10).map(\.id) == [entries[3].id])

        let recorded = try await store.markAttemptsFailed([
            FailedAttempt(id: entries[0].id, error: "HTTP 503", nextAttempt: Self.now + .seconds(5), leaseEnd: lease),
            FailedAttempt(id: entries[1].id, error: "HTTP 410", nextAttempt: nil, leaseEnd: lease),
            FailedAttempt(id: entries[2].id, error: "late", nextAttempt: nil, leaseEnd: lease),
            FailedAttempt(id: entries[3].id, error: "late", nextAttempt: nil, leaseEnd: short),
        ])
        #expect(recorded == [entries[0].id, entries[1].id])
        let dead = try await store.deadOutbox(limit: 10)
        #expect(dead.map(\.id) == [entries[1].id] && dead.first?.lastError == "HTTP 410" && dead.first?.attempts == 1)
        let retried = try await store.leaseOutbox(.tdmq, now: Self.now + .seconds(5), until: lease, limit: 10)
        #expect(retried.map(\.id) == [entries[0].id] && retried.first?.attempts == 1 && retried.first?.lastError == "HTTP 503")
        let taken = try await store.leaseOutbox(.tdmq, now: later, until: later + .seconds(60), limit: 10)
        #expect(taken.first { $0.id == entries[3].id }?.attempts == 0, "the other relay's lease stood: nothing recorded on it")
        #expect(try await store.markAttemptsFailed([]).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func releasedLeasesAreDueAtOnceExceptOnesAnotherRelayTookSince(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let entries = try await deliveries(store, count: 3)
        let (shortLease, longLease) = (Self.now + .seconds(30), Self.now + .seconds(60))
        _ = try await store.leaseOutbox(.tdmq, now: Self.now, until: shortLease, limit: 1)
        _ = try await store.leaseOutbox(.tdmq, now: Self.now, until: longLease, limit: 2)
        // The short lease ended and another relay took that delivery; then the first relay stops.
        let retaken = shortLease + .seconds(60)
        #expect(try await store.leaseOutbox(.tdmq, now: shortLease, until: retaken, limit: 10).map(\.id) == [entries[0].id])

        let stopping = shortLease + .seconds(1)
        try await store.releaseLeases(entries.map { ($0.id, $0.id == entries[0].id ? shortLease : longLease) }, now: stopping)
        let due = try await store.leaseOutbox(.tdmq, now: stopping, until: stopping + .seconds(60), limit: 10)
        #expect(Set(due.map(\.id)) == Set(entries[1...].map(\.id)), "both lease ends given back; the retaken delivery keeps its new lease")
    }

    @Test(arguments: StoreKind.allCases)
    func aFailureRecordedAfterTheLeaseWasTakenOverLeavesTheNewLeaseAlone(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let entry = try #require(try await deliveries(store, count: 1).first)
        let firstLease = Self.now + .seconds(60)
        _ = try await store.leaseOutbox(.tdmq, now: Self.now, until: firstLease, limit: 10)
        // The first relay was held up past its lease; a second took the delivery.
        let secondLease = firstLease + .seconds(60)
        #expect(try await store.leaseOutbox(.tdmq, now: firstLease, until: secondLease, limit: 10).map(\.id) == [entry.id])

        // The first relay's failure comes in late: the second relay's lease stands, and no third
        // relay can take the delivery while the second may still be sending it.
        #expect(try await !store.markAttemptFailed(entry.id, error: "late", nextAttempt: firstLease + .seconds(1), leaseEnd: firstLease))
        #expect(try await store.leaseOutbox(.tdmq, now: secondLease - .milliseconds(1), until: secondLease + .seconds(60), limit: 10).isEmpty)
        #expect(try await !store.markAttemptFailed(entry.id, error: "late", nextAttempt: nil, leaseEnd: firstLease))
        #expect(try await store.deadOutbox(limit: 10).isEmpty)
        // The second relay's own failure counts.
        #expect(try await store.markAttemptFailed(entry.id, error: "broker down", nextAttempt: secondLease + .seconds(5), leaseEnd: secondLease))
        let retried = try await store.leaseOutbox(.tdmq, now: secondLease + .seconds(5), until: secondLease + .seconds(65), limit: 10)
        #expect(retried.map(\.attempts) == [1])
    }

    @Test(.timeLimit(.minutes(5)), arguments: StoreKind.allCases, [EndpointFilter.all, .excluding(["elsewhere"])])
    func relaysLeasingAtOnceGetEachDeliveryOnce(_ kind: StoreKind, endpoints: EndpointFilter) async throws {
        let store = try await kind.make()
        let entries = try await deliveries(store, count: 200)
        let taken = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var mine: [String] = []
                    for _ in 0..<1000 {
                        let batch = try await store.leaseOutbox(.tdmq, now: Self.now, until: Self.now + .seconds(60), limit: 7, endpoints: endpoints)
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.id)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(taken.count == entries.count, "no delivery taken twice")
        #expect(Set(taken) == Set(entries.map(\.id)))
    }

    /// Relays on several nodes lease from one PostgreSQL database at once. A lease that leaves
    /// some endpoints out (a relay whose regional broker is full) takes the due deliveries no
    /// other relay is taking, instead of reading the same oldest ones and waiting on them.
    @Test(.timeLimit(.minutes(5)))
    func aPostgresLeaseLeavingEndpointsOutPassesOverDeliveriesAnotherRelayIsLeasing() async throws {
        let store = try #require(try await StoreKind.postgres.make() as? PostgresJobStore)
        let entries = try await deliveries(store, count: 4)
        let (locked, leased) = try await store.transaction { connection in
            // Another relay's lease, between its read and its commit.
            let locked = try await connection.query(
                "SELECT id FROM outbox ORDER BY next_attempt, created_at LIMIT 2 FOR UPDATE", logger: Logger(label: "test")
            ).collect().map { try $0.decode(String.self) }
            let leased = try await store.leaseOutbox(
                .tdmq, now: Self.now, until: Self.now + .seconds(60), limit: 4, endpoints: .excluding(["elsewhere"])
            )
            return (locked, leased.map(\.id))
        }
        #expect(locked == entries.prefix(2).map(\.id))
        #expect(leased == entries.suffix(2).map(\.id))
    }
}
