import Logging
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueEngine

/// The retention sweep on the memory store and a manual clock: nothing goes before its time, and
/// once it has passed, one sweep removes everything over in as many batches as it takes.
@Suite(.timeLimit(.minutes(5))) struct RetentionServiceTests {
    @Test func eachSweepRemovesWhatEndedLongerAgoThanTheRetentionInBatches() async throws {
        // Job ids carry the wall-clock time: the manual clock starts there.
        let clock = ManualTimeSource(SystemTimeSource().now)
        let store = MemoryJobStore(time: clock)
        let queue = try await store.ensureDefaultQueue(
            bucket: "b", template: MediaQueue(bucket: "b", name: "", maxConcurrent: 10, maxSize: 100, createTime: clock.now)
        )
        let jobs = (0..<5).map { _ in
            Job(bucket: "b", queueID: queue.id, tag: "Noop", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: clock.now)
        }
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: jobs)])
        for var job in try await store.claimJobs(owner: "n", now: clock.now, leaseUntil: clock.now + .seconds(60), limit: 10) {
            job.state = .success
            job.endTime = clock.now
            #expect(try await store.finish(job, owner: "n", outbox: []))
        }

        let service = RetentionService(
            store: store, options: RetentionOptions(retention: .seconds(3600), interval: .seconds(600), batchSize: 2), time: clock,
            logger: Logger(label: "test")
        )
        let running = Task { try await service.run() }
        defer { running.cancel() }
        await clock.sleepers(atLeast: 1)
        #expect(try await store.jobs(JobQuery(limit: 10)).count == 5, "ended less than the retention ago: kept")

        clock.advance(by: .seconds(3600 + 600))
        await clock.sleepers(atLeast: 1)
        #expect(try await store.jobs(JobQuery(limit: 10)).isEmpty, "all five went in the next sweep, two at a time")
    }
}
