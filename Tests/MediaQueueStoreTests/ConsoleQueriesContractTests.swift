import Foundation
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// The console's reads and bulk actions (a job's deliveries, dead deliveries by filter, their
/// redrive, recent activity), against the memory store and a real SQLite file.
@Suite struct ConsoleQueriesContractTests {
    static let now = Timestamp(seconds: 1_700_000_100)

    /// Ends `count` jobs of `queue`, each with one delivery to `target`, created a second apart
    /// from `start` (real time: the store finds deliveries by ids that carry their time).
    func endedJobs(_ store: any JobStore, _ queue: MediaQueue, count: Int, target: CallbackTarget.Destination, start: Timestamp) async throws -> [(Job, OutboxEntry)] {
        for index in 0..<count { _ = try await submitOne(store, newJob(queue, userData: "\(index)")) }
        let claimed = try await store.claimJobs(owner: "n", now: start, leaseUntil: start + .seconds(600), limit: count)
        var ended: [(Job, OutboxEntry)] = []
        for (index, var job) in claimed.enumerated() {
            job.state = .success
            job.endTime = start + .seconds(index)
            let entry = OutboxEntry.taskFinish(job, target: CallbackTarget(destination: target, format: .xml), formatting: CIFormatting(), now: start + .seconds(index))
            #expect(try await store.finish(job, owner: "n", outbox: [entry]))
            ended.append((job, entry))
        }
        return ended
    }

    @Test(arguments: StoreKind.allCases)
    func aJobsDeliveriesShowTheirStatus(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let now = SystemTimeSource().now
        let ended = try await endedJobs(store, queue, count: 3, target: .url("http://example.invalid/cb"), start: now)
        try await store.markDelivered([ended[0].1.id], at: now + .seconds(1))
        try await store.markAttemptFailed(ended[1].1.id, error: "HTTP 410 Gone", nextAttempt: nil, leaseEnd: ended[1].1.nextAttempt)
        try await store.markAttemptFailed(ended[2].1.id, error: "HTTP 500", nextAttempt: now + .seconds(30), leaseEnd: ended[2].1.nextAttempt)

        let first = try await store.deliveries(of: ended[0].0)
        #expect(first.map(\.entry.id) == [ended[0].1.id])
        #expect(first.first?.status == .delivered)
        #expect(first.first?.deliveredAt == now + .seconds(1))
        let dead = try #require(try await store.deliveries(of: ended[1].0).first)
        #expect(dead.status == .dead)
        #expect(dead.entry.lastError == "HTTP 410 Gone")
        let retrying = try #require(try await store.deliveries(of: ended[2].0).first)
        #expect(retrying.status == .pending)
        #expect(retrying.entry.attempts == 1)
        #expect(retrying.entry.nextAttempt == now + .seconds(30))
    }

    @Test(arguments: StoreKind.allCases)
    func deadDeliveriesAreFilteredAndRedrivenByQueueEndpointTimeAndID(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let other = try await store.ensureDefaultQueue(bucket: "c", template: template())
        let start = SystemTimeSource().now
        let here = try await endedJobs(store, queue, count: 3, target: .url("http://a.example:8080/cb"), start: start)
        let there = try await endedJobs(store, other, count: 2, target: .url("http://b.example/cb"), start: start + .seconds(10))
        for (_, entry) in here + there { try await store.markAttemptFailed(entry.id, error: "gone", nextAttempt: nil, leaseEnd: entry.nextAttempt) }

        func dead(_ filter: DeliveryFilter) async throws -> [String] { try await store.deadOutbox(filter, limit: 100).map(\.id) }
        #expect(try await dead(DeliveryFilter()) == (here + there).map(\.1.id))
        #expect(try await dead(DeliveryFilter(queueID: queue.id)) == here.map(\.1.id))
        #expect(try await dead(DeliveryFilter(endpoint: "b.example:80")) == there.map(\.1.id))
        #expect(try await dead(DeliveryFilter(createdFrom: start + .seconds(1), createdTo: start + .seconds(10))) == [here[1].1.id, here[2].1.id, there[0].1.id])
        #expect(try await dead(DeliveryFilter(bucket: "c", ids: [there[1].1.id, here[0].1.id])) == [there[1].1.id])

        // Redrive one, then every other one of the queue (beyond any page size), then the rest.
        #expect(try await store.redriveDead(DeliveryFilter(ids: [here[0].1.id]), now: start) == 1)
        #expect(try await store.redriveDead(DeliveryFilter(queueID: queue.id), now: start) == 2)
        #expect(try await dead(DeliveryFilter()) == there.map(\.1.id))
        let redriven = try #require(try await store.deliveries(of: here[2].0).first)
        #expect(redriven.status == .pending)
        #expect(redriven.entry.attempts == 0)
        #expect(try await store.redriveDead(now: start) == 2)
    }

    @Test(arguments: StoreKind.allCases)
    func activityCountsRecentJobsByStateAndTheirEndsPerMinute(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let old = Timestamp(seconds: 1_700_000_000)
        let recent = old + .seconds(3600 * 30)
        func job(created: Timestamp) -> Job {
            Job(bucket: "b", queueID: queue.id, tag: "Snapshot", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: created)
        }
        _ = try await submitOne(store, job(created: old))  // before the period: not counted
        for offset in 0..<4 { _ = try await submitOne(store, job(created: recent + .seconds(offset))) }
        _ = try await submitOne(store, Job(bucket: "x", queueID: queue.id, tag: "Snapshot", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: recent))
        // The old job, two that end and one that keeps running; the last one waits.
        let claimed = try await store.claimJobs(owner: "n", now: recent, leaseUntil: recent + .seconds(600), limit: 4)
        let now = recent + .seconds(3600)
        for (index, var job) in claimed.dropFirst().prefix(2).enumerated() {
            job.state = index == 0 ? .success : .failed
            job.endTime = now - .seconds(30 + 600 * index)  // this minute, and ten minutes ago
            #expect(try await store.finish(job, owner: "n", outbox: []))
        }

        let activity = try await store.activity(bucket: "b", since: recent - .seconds(60), now: now)
        #expect(activity.byState == [.success: 1, .failed: 1, .running: 1, .submitted: 1])
        #expect(activity.endedPerMinute.count == 60)
        #expect(activity.endedPerMinute[59] == 1)
        #expect(activity.endedPerMinute[49] == 1)
        #expect(activity.endedPerMinute.reduce(0, +) == 2)
    }
}
