import Foundation
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import Testing

/// What the HTTP relay needs from every store: signing secrets, endpoint-aware due lists, leases.
@Suite struct HTTPDeliveryStoreTests {
    /// One finished job per URL, each with a delivery due at `now`.
    func deliveries(_ store: any JobStore, urls: [String], now: Timestamp) async throws -> [OutboxEntry] {
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        var entries: [OutboxEntry] = []
        for (index, url) in urls.enumerated() {
            var job = try await submitOne(store, newJob(queue, userData: "\(index)"))
            _ = try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(60), limit: 10)
            job.state = .success
            let entry = OutboxEntry(
                jobID: job.id, bucket: "b", target: .url(url), routingKey: "job.x", body: [1, 2], contentType: "application/xml",
                nextAttempt: now + .milliseconds(index), createdAt: now + .milliseconds(index)
            )
            #expect(try await store.finish(job, owner: "n", outbox: [entry]))
            entries.append(entry)
        }
        return entries
    }

    @Test(arguments: StoreKind.allCases)
    func dueDeliveriesToExcludedOrUnlistedEndpointsAreLeftOut(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let now = Timestamp(seconds: 1_700_000_000)
        let entries = try await deliveries(store, urls: ["http://slow.example:8080/a", "http://slow.example:8080/b", "https://fast.example/c"], now: now)
        let all = try await store.dueOutbox(.url, now: now + .seconds(1), limit: 2, excludingEndpoints: [])
        #expect(all.map(\.id) == [entries[0].id, entries[1].id])
        let others = try await store.dueOutbox(.url, now: now + .seconds(1), limit: 2, excludingEndpoints: ["slow.example:8080"])
        #expect(others.map(\.id) == [entries[2].id])
        #expect(others.first?.endpoint == "fast.example:443")
        let only = try await store.dueOutbox(.url, now: now + .seconds(1), limit: 2, endpoints: .only(["fast.example:443", "none.example:80"]))
        #expect(only.map(\.id) == [entries[2].id], "only the endpoints listed")
        let leased = try await store.leaseOutbox(.url, now: now + .seconds(1), until: now + .seconds(60), limit: 5, endpoints: .only(["slow.example:8080"]))
        #expect(leased.map(\.id) == [entries[0].id, entries[1].id])
        #expect(try await store.dueOutbox(.url, now: now + .seconds(1), limit: 5).map(\.id) == [entries[2].id], "the others not leased")
    }

    @Test(arguments: StoreKind.allCases)
    func aLeaseMovesOnlyWhatIsStillDueAndCanBeHandedBack(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let now = Timestamp(seconds: 1_700_000_000)
        let entries = try await deliveries(store, urls: ["http://a.example/", "http://b.example/"], now: now)
        let ids = entries.map(\.id)
        let leaseEnd = now + .seconds(40)
        #expect(try await store.deferOutbox(ids, dueBy: now + .seconds(1), until: leaseEnd) == ids)
        // Leased: not due, and a second relay cannot take them.
        #expect(try await store.dueOutbox(.url, now: now + .seconds(39), limit: 10).isEmpty)
        #expect(try await store.deferOutbox(ids, dueBy: now + .seconds(1), until: leaseEnd).isEmpty)
        // Due again when the lease ends (a crashed relay), or at once when handed back.
        #expect(try await store.dueOutbox(.url, now: leaseEnd, limit: 10).count == 2)
        #expect(try await store.deferOutbox([ids[0]], dueBy: leaseEnd, until: now) == [ids[0]])
        #expect(try await store.dueOutbox(.url, now: now, limit: 10).map(\.id) == [ids[0]])
        // Delivered rows are never moved.
        try await store.markDelivered([ids[0]], at: now)
        #expect(try await store.deferOutbox([ids[0]], dueBy: leaseEnd, until: now).isEmpty)
        #expect(try await store.dueOutbox(.url, now: leaseEnd, limit: 10).map(\.id) == [ids[1]])
    }

    @Test(arguments: StoreKind.allCases)
    func eachBucketHasOneStableSecret(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let first = try await store.webhookSecret(bucket: "b-1")
        #expect(first.hasPrefix("whsec_"))
        #expect(WebhookSecret.keyBytes(first)?.count == 32)
        #expect(try await store.webhookSecret(bucket: "b-1") == first)
        #expect(try await store.webhookSecret(bucket: "b-2") != first)
    }

    @Test(arguments: StoreKind.allCases)
    func aRotationKeepsTheReplacedSecretForItsGracePeriodOnly(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let now = Timestamp(seconds: 1_700_000_000)
        let first = try await store.webhookSecret(bucket: "b")
        let rotated = try await store.rotateSigningSecret(bucket: "b", now: now, grace: .seconds(60))
        #expect(rotated.current != first && rotated.current.hasPrefix("whsec_"))
        #expect(rotated.previous == first)
        #expect(try await store.signingSecrets(bucket: "b") == rotated)
        #expect(rotated.active(at: now + .seconds(59)) == [rotated.current, first])
        #expect(rotated.active(at: now + .seconds(60)) == [rotated.current])
        // A second rotation replaces the previous secret: only one is ever in its grace period.
        let again = try await store.rotateSigningSecret(bucket: "b", now: now + .seconds(1), grace: .zero)
        #expect(again.previous == rotated.current)
        #expect(again.active(at: now + .seconds(1)) == [again.current])
        #expect(try await store.webhookSecret(bucket: "b") == again.current)
        // A bucket without a secret gets one by its first rotation, with nothing to keep.
        let fresh = try await store.rotateSigningSecret(bucket: "new", now: now, grace: .seconds(60))
        #expect(fresh.active(at: now).count == 2)
    }

    @Test func sqliteKeepsSecretsAndPendingDeliveriesAcrossReopening() async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent(TestEnvironment.uniqueName("store")).appendingPathComponent("mq.sqlite").path
        let now = Timestamp(seconds: 1_700_000_000)
        let secret: String
        let entries: [OutboxEntry]
        do {
            let store = try SQLiteJobStore(path: path)
            secret = try await store.webhookSecret(bucket: "b")
            entries = try await deliveries(store, urls: ["http://a.example:81/x"], now: now)
        }
        let reopened = try SQLiteJobStore(path: path)
        #expect(try await reopened.webhookSecret(bucket: "b") == secret)
        let rotated = try await reopened.rotateSigningSecret(bucket: "b", now: now, grace: .seconds(60))
        #expect(try await SQLiteJobStore(path: path).signingSecrets(bucket: "b") == rotated)
        let due = try await reopened.dueOutbox(.url, now: now + .seconds(1), limit: 10, excludingEndpoints: ["other:80"])
        #expect(due.map(\.id) == entries.map(\.id))
        #expect(due.first?.endpoint == "a.example:81")
    }
}
