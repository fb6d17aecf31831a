import Foundation
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// The counts behind metrics and the console, against the memory store and a real SQLite file.
@Suite struct StatisticsContractTests {
    static let now = Timestamp(seconds: 1_700_000_100)

    func job(_ queue: MediaQueue, level: Int, created: Timestamp) -> Job {
        Job(
            bucket: queue.bucket, queueID: queue.id, tag: "Snapshot", jobLevel: level,
            input: XMLTree("Input", children: [XMLTree("Object", text: "in/a.mp4")]), operation: XMLTree("Operation"),
            creationTime: created
        )
    }

    @Test(arguments: StoreKind.allCases)
    func queueStatisticsCountRunningAndWaitingByLevelWithTheOldestWaiting(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        let other = try await store.ensureDefaultQueue(bucket: "c", template: template())
        let start = Timestamp(seconds: 1_700_000_000)
        // Submitted in this order: level 2 first runs (MaxConcurrent 1), the others wait.
        for (offset, level) in [2, 0, 1, 0].enumerated() {
            _ = try await submitOne(store, job(queue, level: level, created: start + .seconds(offset)))
        }
        _ = try await submitOne(store, job(other, level: 1, created: start + .seconds(10)))
        let claimed = try await store.claimJobs(owner: "n", now: Self.now, leaseUntil: Self.now + .seconds(60), limit: 1)
        #expect(claimed.map(\.jobLevel) == [2])

        let all = try await store.queueStatistics(bucket: nil)
        #expect(all.map(\.queueID) == [queue.id, other.id])
        let first = try #require(all.first)
        #expect(first.bucket == "b")
        #expect(first.running == 1)
        #expect(first.waitingByLevel == [2, 1, 0])
        #expect(first.oldestWaiting == start + .seconds(1), "the oldest job still waiting, not the running one")
        #expect(try await store.queueStatistics(bucket: "c").map(\.waitingByLevel) == [[0, 1, 0]])

        // Paused jobs still wait; finished and cancelled ones no longer count.
        var paused = queue
        paused.state = .paused
        try await store.updateQueue(paused)
        var ended = claimed[0]
        ended.state = .success
        #expect(try await store.finish(ended, owner: "n", outbox: []))
        let waiting = try await store.jobs(JobQuery(bucket: "b", states: [.pause], newestFirst: false, limit: 10))
        _ = try await store.cancel(waiting[0].id, now: Self.now)
        let after = try #require(try await store.queueStatistics(bucket: "b").first)
        #expect(after.running == 0)
        #expect(after.waitingByLevel == [1, 1, 0])
        #expect(after.oldestWaiting == start + .seconds(2))
    }

    @Test(arguments: StoreKind.allCases)
    func outboxStatisticsCountPendingAndDeadByChannel(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        for index in 0..<4 { _ = try await submitOne(store, newJob(queue, userData: "\(index)")) }
        let jobs = try await store.claimJobs(owner: "n", now: Self.now, leaseUntil: Self.now + .seconds(60), limit: 4)
        let topic = CallbackTarget(destination: .mq(mode: .topic, name: "events", region: ""), format: .xml)
        let url = CallbackTarget(destination: .url("http://example.invalid/cb"), format: .xml)
        var entries: [OutboxEntry] = []
        for (index, var job) in jobs.enumerated() {
            job.state = .success
            let entry = OutboxEntry.taskFinish(job, target: index == 0 ? topic : url, formatting: CIFormatting(), now: Self.now)
            #expect(try await store.finish(job, owner: "n", outbox: [entry]))
            entries.append(entry)
        }
        #expect(try await store.outboxStatistics() == OutboxStatistics(pending: [.tdmq: 1, .url: 3]))

        try await store.markDelivered([entries[0].id], at: Self.now)
        try await store.markAttemptFailed(entries[1].id, error: "HTTP 410 Gone", nextAttempt: nil, leaseEnd: entries[1].nextAttempt)
        try await store.markAttemptFailed(entries[2].id, error: "HTTP 500", nextAttempt: Self.now + .seconds(5), leaseEnd: entries[2].nextAttempt)
        #expect(try await store.outboxStatistics() == OutboxStatistics(pending: [.url: 2], dead: [.url: 1]))

        #expect(try await store.redriveDead(now: Self.now) == 1)
        #expect(try await store.outboxStatistics() == OutboxStatistics(pending: [.url: 3]))
    }
}
