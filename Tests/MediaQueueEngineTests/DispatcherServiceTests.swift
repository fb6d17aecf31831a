import Logging
import MediaQueueCore
import MediaQueueTestSupport
import Synchronization
import Testing
@testable import MediaQueueEngine

/// The dispatcher service on the memory store with a manual clock: what it does over time
/// while a job runs, moved by the test instead of slept through.
@Suite(.timeLimit(.minutes(2))) struct DispatcherServiceTests {
    /// Runs until its task is cancelled: a job that stays running while the test moves time.
    struct HoldWorker: MediaWorker {
        let started: AsyncStream<JobID>.Continuation
        let starts: Starts
        var tag: String { "Hold" }
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
            starts.record(job.id)
            started.yield(job.id)
            try await context.time.sleep(for: .seconds(86_400))
            return WorkResult()
        }
    }

    /// Every start of a Hold job, in order.
    final class Starts: Sendable {
        private let ids = Mutex<[JobID]>([])
        func record(_ id: JobID) { ids.withLock { $0.append(id) } }
        var all: [JobID] { ids.withLock { $0 } }
    }

    let store = MemoryJobStore()
    let clock = ManualTimeSource()
    let starts = Starts()
    let leaseDuration = Duration.seconds(60)
    let turn = Duration.seconds(1)

    /// Stores one Hold job and runs a dispatcher until the returned task is cancelled; returns
    /// once the job has started.
    func startHoldingOneJob() async throws -> (job: JobID, dispatcher: Task<Void, any Error>) {
        let (started, startedContinuation) = AsyncStream.makeStream(of: JobID.self)
        let workers = WorkerRegistry([HoldWorker(started: startedContinuation, starts: starts)])
        try await submitHoldJob(workers)

        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = DispatcherService(
            store: store, workers: workers,
            options: DispatcherOptions(owner: "node-a", storage: ObjectsStub(), leaseDuration: leaseDuration, housekeepingInterval: turn),
            formatting: CIFormatting(), time: clock, logger: logger
        )
        let dispatcher = Task { try await service.run() }
        var startedJobs = started.makeAsyncIterator()
        let job = try #require(await startedJobs.next())
        return (job, dispatcher)
    }

    @discardableResult
    func submitHoldJob(_ workers: WorkerRegistry) async throws -> JobID {
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 0)) }
        let body = Array("<Request><Tag>Hold</Tag><Input><Object>in.mp4</Object></Input><Operation/></Request>".utf8)
        let submission = try await SubmissionFactory(queues: queues, workers: workers)
            .submission(body: body, bucket: "b-1", idempotencyKey: nil, now: clock.now).get()
        let outcome = try await store.submit([submission]).first
        return try #require(outcome.flatMap { if case .created(let jobs) = $0 { jobs.first?.id } else { nil } })
    }

    func leaseEnd(of job: JobID) async throws -> Timestamp? {
        try await store.job(id: job)?.lease?.expiresAt
    }

    /// Moves the clock from one sleeper's deadline to the next until `done` returns a value, but
    /// not past `limit`. Never further than the next deadline: a task the machine is slow to run
    /// sleeps again later, and its turn is not skipped.
    func turns<T>(_ what: String, upTo limit: Timestamp, until done: () async throws -> T?) async throws -> T {
        try await eventually(what) {
            if let value = try await done() { return value }
            if let next = clock.nextDeadline, next <= limit { clock.advance(by: .milliseconds(next.milliseconds - clock.now.milliseconds)) }
            return nil
        }
    }

    /// A renewal the store failed is tried again at the next housekeeping turn, not a third of a
    /// lease later: two failed turns could otherwise let a running job's lease end, and another
    /// process (or this one) would run the job a second time.
    @Test func aFailedLeaseRenewalIsTriedAgainAtTheNextTurn() async throws {
        let (job, dispatcher) = try await startHoldingOneJob()
        defer { dispatcher.cancel() }
        let claimed = clock.now
        #expect(try await leaseEnd(of: job) == claimed + leaseDuration)

        store.failNextLeaseRenewals(1)
        let failedAt = try await turns("the renewal due at a third of the lease, which the store fails", upTo: claimed + leaseDuration / 2) {
            store.leaseRenewalFailuresLeft == 0 ? clock.now : nil
        }
        #expect(failedAt >= claimed + leaseDuration / 3)
        #expect(try await leaseEnd(of: job) == claimed + leaseDuration, "the failed renewal changed nothing")

        // Not as far as a third of a lease after the failure, when a renewal would be due anyway.
        let renewedEnd = try await turns("the renewal tried again", upTo: failedAt + leaseDuration / 3 - turn) {
            try await leaseEnd(of: job).flatMap { $0 > claimed + leaseDuration ? $0 : nil }
        }
        #expect(renewedEnd < failedAt + leaseDuration / 3 + leaseDuration, "tried again before the next regular renewal")
    }

    /// A running job whose lease ended before a renewal came (the store fails every renewal here)
    /// is claimed again by its own dispatcher. The run it has goes on alone: the claim does not
    /// start it a second time (two runs would share its files, and a cancel would reach one), and
    /// the claim's slot is free for the next job.
    @Test func aRunningJobItsOwnDispatcherClaimsAgainIsNotStartedTwice() async throws {
        let (job, dispatcher) = try await startHoldingOneJob()
        defer { dispatcher.cancel() }
        let claimed = clock.now
        store.failNextLeaseRenewals(1_000_000)
        _ = try await turns("the job claimed again once its lease ended", upTo: claimed + leaseDuration * 2) {
            try await store.job(id: job).flatMap { $0.attempts > 1 ? $0 : nil }
        }
        let workers = WorkerRegistry([HoldWorker(started: AsyncStream.makeStream(of: JobID.self).continuation, starts: starts)])
        let next = try await submitHoldJob(workers)
        let started = try await turns("the next job started", upTo: clock.now + leaseDuration) {
            starts.all.contains(next) ? starts.all : nil
        }
        #expect(started == [job, next], "the job claimed again was not started a second time")
        #expect(try await store.job(id: job)?.state == .running)
    }

    /// Cancelled rather than shut down gracefully, the dispatcher does not wait out the drain
    /// time (the clock here never reaches it): it stops its running job at once and hands it back
    /// to its queue.
    @Test func aCancelledDispatcherHandsItsRunningJobBackWithoutWaitingOutTheDrain() async throws {
        let (job, dispatcher) = try await startHoldingOneJob()
        dispatcher.cancel()
        _ = await dispatcher.result
        let handedBack = try await store.job(id: job)
        #expect(handedBack?.state == .submitted)
        #expect(handedBack?.lease == nil)
    }
}

/// The running jobs the drain waits for: once it has closed them, a job the starter hands over
/// late is refused (and given back to its queue), so the count the drain reads can only go down.
@Suite struct RunningJobsTests {
    @Test func aJobHandedOverAfterTheDrainClosedTheRunningJobsIsRefused() {
        let running = RunningJobs()
        let first = JobID(rawValue: "j-first")
        #expect(running.insert(first) == .inserted)
        #expect(running.insert(first) == .alreadyRunning)
        running.close()
        #expect(running.insert(JobID(rawValue: "j-late")) == .closed, "the drain has looked already")
        #expect(running.ids == [first])
        running.remove(first)
        #expect(running.count == 0)
    }
}
