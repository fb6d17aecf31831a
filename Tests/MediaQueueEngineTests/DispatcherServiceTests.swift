import Logging
import MediaQueueCore
import MediaQueueTestSupport
import Synchronization
import ServiceLifecycle
import Testing
@testable import MediaQueueEngine

/// The dispatcher service on the memory store with a manual clock: what it does over time
/// while a job runs, moved by the test instead of slept through.
@Suite(.timeLimit(.minutes(5))) struct DispatcherServiceTests {
    /// Runs until its task is cancelled: a job that stays running while the test moves time.
    struct HoldWorker: MediaWorker {
        let started: AsyncStream<JobID>.Continuation
        let starts: Starts
        var tag: String { "Hold" }
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
            starts.record(job.id)
            started.yield(job.id)
            defer { starts.recordEnd(job.id) }
            try await context.time.sleep(for: .seconds(86_400))
            return WorkResult()
        }
    }

    /// Every start of a Hold job, in order, and the runs that have ended.
    final class Starts: Sendable {
        private let ids = Mutex<[JobID]>([])
        private let endedIDs = Mutex<[JobID]>([])
        func record(_ id: JobID) { ids.withLock { $0.append(id) } }
        func recordEnd(_ id: JobID) { endedIDs.withLock { $0.append(id) } }
        var all: [JobID] { ids.withLock { $0 } }
        var ended: [JobID] { endedIDs.withLock { $0 } }
    }

    let store = MemoryJobStore()
    let clock = ManualTimeSource()
    let starts = Starts()
    let leaseDuration = Duration.seconds(60)
    let turn = Duration.seconds(1)

    /// Stores one Hold job and runs a dispatcher until the returned task is cancelled (or, in a
    /// service group, shut down); returns once the job has started.
    func startHoldingOneJob(in group: ((DispatcherService) -> ServiceGroup)? = nil) async throws -> (job: JobID, dispatcher: Task<Void, any Error>) {
        let (started, startedContinuation) = AsyncStream.makeStream(of: JobID.self)
        let workers = WorkerRegistry([HoldWorker(started: startedContinuation, starts: starts)])
        try await submitHoldJob(workers)

        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = DispatcherService(
            store: store, workers: workers,
            options: DispatcherOptions(
                owner: "node-a", storage: ObjectsStub(), leaseDuration: leaseDuration, housekeepingInterval: turn, drainTimeout: .seconds(5),
                drainPollInterval: turn
            ),
            formatting: CIFormatting(), time: clock, logger: logger
        )
        let dispatcher = if let group { Task { [group = group(service)] in try await group.run() } } else { Task { try await service.run() } }
        var startedJobs = started.makeAsyncIterator()
        let job = try #require(await startedJobs.next())
        return (job, dispatcher)
    }

    /// `startHoldingOneJob` in a service group, which the test can shut down gracefully.
    func startHoldingOneJobInAServiceGroup() async throws -> (job: JobID, dispatcher: Task<Void, any Error>, group: ServiceGroup, service: DispatcherService) {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let started = Mutex<(ServiceGroup, DispatcherService)?>(nil)
        let (job, dispatcher) = try await startHoldingOneJob { service in
            let group = ServiceGroup(services: [service], logger: logger)
            started.withLock { $0 = (group, service) }
            return group
        }
        let (group, service) = try #require(started.withLock { $0 })
        return (job, dispatcher, group, service)
    }

    /// Moves time on until the dispatcher has ended (a drain waits on the clock).
    func untilEnded(_ dispatcher: Task<Void, any Error>) async throws {
        let ended = Mutex(false)
        let watcher = Task { _ = await dispatcher.result; ended.withLock { $0 = true } }
        _ = try await turns("the drain over and the dispatcher ended", upTo: clock.now + .seconds(3_600)) {
            ended.withLock { $0 } ? true : nil
        }
        await watcher.value
        try await dispatcher.value
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

    /// Ends at once, counting its runs.
    struct QuickWorker: MediaWorker {
        let starts: Starts
        var tag: String { "Quick" }
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
            starts.record(job.id)
            return WorkResult()
        }
    }

    /// The end of a job that the store failed to write (a database restarting, a locked file) is
    /// written again while the job's lease holds. Given up at once, it left the job to run again
    /// from the start once its lease ended, and a third such failure ended it as WorkerCrashed.
    @Test func anEndTheStoreFailedToWriteIsWrittenAgainAndTheJobRunsOnce() async throws {
        let workers = WorkerRegistry([QuickWorker(starts: starts)])
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 0)) }
        let body = Array("<Request><Tag>Quick</Tag><Input><Object>in.mp4</Object></Input><Operation/></Request>".utf8)
        let submission = try await SubmissionFactory(queues: queues, workers: workers)
            .submission(body: body, bucket: "b-1", idempotencyKey: nil, now: clock.now).get()
        let job = try #require(try await store.submit([submission]).first.flatMap { if case .created(let jobs) = $0 { jobs.first?.id } else { nil } })
        store.failNextFinishes(3)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = DispatcherService(
            store: store, workers: workers,
            options: DispatcherOptions(owner: "node-a", storage: ObjectsStub(), leaseDuration: leaseDuration, housekeepingInterval: turn),
            formatting: CIFormatting(), time: clock, logger: logger
        )
        let dispatcher = Task { try await service.run() }
        defer { dispatcher.cancel() }
        let ended = try await turns("the job's end recorded", upTo: clock.now + leaseDuration * 3) {
            try await store.job(id: job).flatMap { $0.state.isTerminal ? $0 : nil }
        }
        #expect(ended.state == .success)
        #expect(ended.attempts == 1)
        #expect(starts.all == [job], "one run")
        #expect(store.finishFailuresLeft == 0, "the three failed writes were tried again")
    }

    /// Fails with `StorageUnavailable` the first `failures` times it runs.
    struct StorageOutageWorker: MediaWorker {
        let starts: Starts
        let failures: Int
        var tag: String { "Quick" }
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
            starts.record(job.id)
            if starts.all.count <= failures {
                throw WorkFailure(code: WorkFailure.storageUnavailable, message: "cannot read 'in.mp4' from the object storage")
            }
            return WorkResult()
        }
    }

    /// Stores one Quick job and runs a dispatcher with `worker` until the returned task is cancelled.
    func runQuickJob(_ worker: any MediaWorker, patience: Duration = .seconds(900)) async throws -> (JobID, Task<Void, any Error>) {
        let workers = WorkerRegistry([worker])
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 0)) }
        let body = Array("<Request><Tag>Quick</Tag><Input><Object>in.mp4</Object></Input><Operation/></Request>".utf8)
        let submission = try await SubmissionFactory(queues: queues, workers: workers)
            .submission(body: body, bucket: "b-1", idempotencyKey: nil, now: clock.now).get()
        let job = try #require(try await store.submit([submission]).first.flatMap { if case .created(let jobs) = $0 { jobs.first?.id } else { nil } })
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var options = DispatcherOptions(owner: "node-a", storage: ObjectsStub(), leaseDuration: leaseDuration, housekeepingInterval: turn)
        options.storageHolds = .seconds(2) ... .seconds(8)
        options.storageOutagePatience = patience
        let service = DispatcherService(store: store, workers: workers, options: options, formatting: CIFormatting(), time: clock, logger: logger)
        return (job, Task { try await service.run() })
    }

    /// An object storage away for a while failed every job the dispatcher started, for good, one
    /// every few seconds. The job now goes back to its queue, claims pause for a time that
    /// doubles, and the job succeeds once the storage is back, with no attempt counted.
    @Test func aJobTheStorageFailsGoesBackToItsQueueAndRunsWhenTheStorageIsBack() async throws {
        let (job, dispatcher) = try await runQuickJob(StorageOutageWorker(starts: starts, failures: 2))
        defer { dispatcher.cancel() }
        let first = try await eventually("the first start") { starts.all.count == 1 ? clock.now : nil }
        try await eventually("the job back in its queue") { try await store.job(id: job)?.state == .submitted }
        let ended = try await turns("the job's end recorded", upTo: clock.now + .seconds(60)) {
            try await store.job(id: job).flatMap { $0.state.isTerminal ? $0 : nil }
        }
        #expect(ended.state == .success)
        #expect(ended.attempts == 1)
        #expect(starts.all == [job, job, job])
        // Held 2 s, then 4 s: not started again before.
        #expect(clock.now >= first + .seconds(6))
    }

    /// A storage that keeps failing one job (an object it cannot serve) holds it no longer than
    /// the patience from its first failure: then the job fails, saying why.
    @Test func aJobTheStorageKeepsFailingPastThePatienceFails() async throws {
        let (job, dispatcher) = try await runQuickJob(StorageOutageWorker(starts: starts, failures: .max), patience: .seconds(10))
        defer { dispatcher.cancel() }
        let first = try await eventually("the first failure") { starts.all.count == 1 ? clock.now : nil }
        let ended = try await turns("the job's end recorded", upTo: clock.now + .seconds(120)) {
            try await store.job(id: job).flatMap { $0.state.isTerminal ? $0 : nil }
        }
        #expect(ended.state == .failed)
        #expect(ended.code == WorkFailure.storageUnavailable)
        // Handed back within the patience (held 2, 4, 8 s; how many starts fit depends on how
        // far the clock moved while the machine was busy), failed past it.
        #expect(starts.all.count >= 2)
        #expect(try #require(ended.endTime) >= first + .seconds(10))
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
    /// the claim's slot is free for the next job. Nor does the claim count as one of the job's
    /// starts: enough of them would fail it as `WorkerCrashed` once its process died.
    @Test func aRunningJobItsOwnDispatcherClaimsAgainIsNotStartedTwice() async throws {
        let (job, dispatcher) = try await startHoldingOneJob()
        defer { dispatcher.cancel() }
        let claims = Mutex(0)
        store.afterEachClaim { result in
            if result.jobs.contains(where: { $0.id == job }) { claims.withLock { $0 += 1 } }
        }
        let claimed = clock.now
        store.failNextLeaseRenewals(1_000_000)
        _ = try await turns("the job claimed again once its lease ended", upTo: claimed + leaseDuration * 2) {
            claims.withLock { $0 } > 0 ? true : nil
        }
        try await eventually("the claim's attempt taken back") { try await store.job(id: job)?.attempts == 1 ? true : nil }
        let workers = WorkerRegistry([HoldWorker(started: AsyncStream.makeStream(of: JobID.self).continuation, starts: starts)])
        let next = try await submitHoldJob(workers)
        let started = try await turns("the next job started", upTo: clock.now + leaseDuration) {
            starts.all.contains(next) ? starts.all : nil
        }
        #expect(started == [job, next], "the job claimed again was not started a second time")
        #expect(try await store.job(id: job)?.state == .running)
    }

    /// A job whose lease ended under its run (no renewal came) is claimed again by its own
    /// dispatcher just as that dispatcher begins to shut down. The claim cannot start it, but it
    /// does not hand it back to its queue either while its run goes on through the drain: another
    /// process would run it a second time. Only the run, once stopped, hands it back.
    @Test func aRunningJobItsDispatcherClaimsAgainAsItStopsIsNotHandedBackWhileItRuns() async throws {
        let (job, dispatcher, group, service) = try await startHoldingOneJobInAServiceGroup()
        defer { dispatcher.cancel() }
        let releases = Mutex<[(ids: [JobID], runEnded: Bool)]>([])
        store.afterEachRelease { [starts] ids in releases.withLock { $0.append((ids, starts.ended.contains(job))) } }
        let (claimHeld, heldContinuation) = AsyncStream.makeStream(of: Void.self)
        let (gate, gateContinuation) = AsyncStream.makeStream(of: Void.self)
        store.afterEachClaim { result in
            guard result.jobs.contains(where: { $0.id == job }) else { return }
            heldContinuation.yield()
            for await _ in gate { return }
        }

        store.failNextLeaseRenewals(1_000_000)
        let claimed = clock.now
        let held = Task { for await _ in claimHeld { return true }; return false }
        _ = try await turns("the job claimed again once its lease ended", upTo: claimed + leaseDuration * 2) {
            try await store.job(id: job).flatMap { $0.attempts > 1 ? $0 : nil }
        }
        #expect(await held.value)
        await group.triggerGracefulShutdown()
        try await eventually("the dispatcher stopped claiming") { service.handle.isStopped }
        gateContinuation.yield()

        // The drain waits for the run until its time is up; then the run is stopped and hands the job back.
        try await untilEnded(dispatcher)
        let handBacks = releases.withLock { $0.filter { $0.ids.contains(job) } }
        #expect(handBacks.map(\.runEnded) == [true], "handed back once, after its run ended")
        #expect(try await store.job(id: job)?.state == .submitted)
    }

    /// A job its run hands back when the drain stops it, taken again by a claim through the
    /// dispatcher's door (as the intake's) that began before the stop and commits after that
    /// hand-back: the claim hands it back too, rather than leave it leased to a process that is
    /// ending (nobody would run it until the lease ended).
    @Test func aJobHandedBackByItsStoppedRunAndClaimedAgainIsHandedBackAgain() async throws {
        let (job, dispatcher, group, service) = try await startHoldingOneJobInAServiceGroup()
        defer { dispatcher.cancel() }

        let (gate, gateContinuation) = AsyncStream.makeStream(of: Void.self)
        let (inClaim, inClaimContinuation) = AsyncStream.makeStream(of: Void.self)
        let claim = Task { [store, clock] in
            try await service.handle.claim(upTo: 1, now: clock.now) { request in
                inClaimContinuation.yield()
                for await _ in gate { break }
                guard let request else { return ([JobID](), ClaimResult(jobs: [], moreWaiting: false)) }
                let result = try await store.claim(request)
                return (result.jobs.map(\.id), result)
            }
        }
        var claims = inClaim.makeAsyncIterator()
        _ = await claims.next()
        // The run's hand-back lets the claim go on and waits for it: the job is still among
        // those that run here meanwhile.
        let runHandedBack = Mutex(false)
        store.afterEachRelease { ids in
            guard ids.contains(job), !runHandedBack.withLock({ handedBack in defer { handedBack = true }; return handedBack }) else { return }
            gateContinuation.yield()
            _ = await claim.result
        }

        await group.triggerGracefulShutdown()
        try await untilEnded(dispatcher)
        #expect(try await claim.value == [job], "the claim took the job its run had handed back")
        let stored = try await store.job(id: job)
        #expect(stored?.state == .submitted)
        #expect(stored?.lease == nil)
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
