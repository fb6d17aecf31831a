public import MediaQueueCore
import Synchronization

/// A store whose first submission fails: after it was committed, as when a PostgreSQL `COMMIT`'s
/// reply is lost on its way back (the caller cannot tell from the error whether the jobs were
/// stored), or, with `commits: false`, before anything was stored.
public final class CommitThenFailStore: JobStore, Sendable {
    public let base: any JobStore
    private let commits: Bool
    private let hasFailed = Mutex(false)
    /// How many of the next job reads fail.
    private let failingReads: Mutex<Int>
    private let hangingReads: Bool
    private let beforeQueueReads: @Sendable () async -> Void

    /// `failingReads`: how many job reads (`job(id:)`) fail before they are answered again;
    /// `hangingReads`: the reads after those never answer, until their task is cancelled (a
    /// database that does not answer); `beforeQueueReads` runs before each `queue(id:)` is
    /// answered (a test can hold a reader there).
    public init(
        _ base: any JobStore, commits: Bool = true, failingReads: Int = 0, hangingReads: Bool = false,
        beforeQueueReads: @escaping @Sendable () async -> Void = {}
    ) {
        self.beforeQueueReads = beforeQueueReads
        self.base = base
        self.commits = commits
        self.failingReads = Mutex(failingReads)
        self.hangingReads = hangingReads
    }

    public struct SimulatedFailure: Error {}

    public func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        let fails = hasFailed.withLock { hasFailed in
            defer { hasFailed = true }
            return !hasFailed
        }
        if fails && !commits { throw SimulatedFailure() }
        let outcomes = try await base.submit(submissions)
        if fails { throw SimulatedFailure() }
        return outcomes
    }

    public func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue { try await base.ensureDefaultQueue(bucket: bucket, template: template) }
    public func createQueue(_ queue: MediaQueue) async throws { try await base.createQueue(queue) }
    public func createDefinition(_ definition: Definition) async throws { try await base.createDefinition(definition) }
    public func updateDefinition(_ definition: Definition) async throws { try await base.updateDefinition(definition) }
    public func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] { try await base.definitions(kind, bucket: bucket) }
    public func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? { try await base.definition(kind, id: id) }
    public func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws { try await base.deleteDefinition(kind, id: id, bucket: bucket) }
    public func createRun(_ run: WorkflowRun, jobs: [Job]) async throws -> WorkflowRun { try await base.createRun(run, jobs: jobs) }
    public func updateRun(_ run: WorkflowRun, jobs: [Job], outbox: [OutboxEntry]) async throws -> Bool { try await base.updateRun(run, jobs: jobs, outbox: outbox) }
    public func run(id: String) async throws -> WorkflowRun? { try await base.run(id: id) }
    public func recordArrival(_ arrival: Arrival) async throws { try await base.recordArrival(arrival) }
    public func removeArrival(id: String) async throws { try await base.removeArrival(id: id) }
    public func arrivals(before cutoff: Timestamp, after: Arrival?, limit: Int) async throws -> [Arrival] {
        try await base.arrivals(before: cutoff, after: after, limit: limit)
    }
    public func runs(_ query: RunQuery) async throws -> [WorkflowRun] { try await base.runs(query) }
    public func runningRuns(after sequence: Int64, limit: Int) async throws -> [WorkflowRun] { try await base.runningRuns(after: sequence, limit: limit) }
    public func queues(bucket: String?) async throws -> [MediaQueue] { try await base.queues(bucket: bucket) }
    public func queue(id: QueueID) async throws -> MediaQueue? {
        await beforeQueueReads()
        return try await base.queue(id: id)
    }
    public func changeQueue(id: QueueID, _ change: @escaping @Sendable (inout MediaQueue) throws(CIError) -> Void) async throws -> MediaQueue {
        try await base.changeQueue(id: id, change)
    }
    public func deleteQueue(id: QueueID) async throws { try await base.deleteQueue(id: id) }
    public func job(id: JobID) async throws -> Job? {
        let fails = failingReads.withLock { left in
            defer { left = max(0, left - 1) }
            return left > 0
        }
        if fails { throw SimulatedFailure() }
        if hangingReads {
            // Ended by cancellation only: the wait is for the caller to give up, not for time.
            try await Task.sleep(for: .seconds(24 * 3600))
        }
        return try await base.job(id: id)
    }
    public func claim(_ request: ClaimRequest) async throws -> ClaimResult { try await base.claim(request) }
    public func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult) {
        try await base.finish(jobs, owner: owner, thenClaim: claim)
    }
    public func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult) {
        // The first call stores without claiming, then fails: nothing holds a lease on the stored
        // jobs, so the dispatcher claims them without waiting for a lease to end.
        if !hasFailed.withLock({ $0 }) { return (try await submit(submissions), ClaimResult(jobs: [], moreWaiting: true)) }
        return try await base.submit(submissions, thenClaim: claim)
    }
    public func renewLeases(_ ids: [JobID], owner: String, until: Timestamp) async throws -> [JobID] { try await base.renewLeases(ids, owner: owner, until: until) }
    public func release(_ ids: [JobID], owner: String) async throws { try await base.release(ids, owner: owner) }
    public func uncountAttempts(_ ids: [JobID], owner: String) async throws { try await base.uncountAttempts(ids, owner: owner) }
    public func updateProgress(_ id: JobID, progress: Int) async throws { try await base.updateProgress(id, progress: progress) }
    public func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool] { try await base.finish(jobs, owner: owner) }
    public func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome { try await base.cancel(id, now: now) }
    public func cancelRequests(owner: String) async throws -> [JobID] { try await base.cancelRequests(owner: owner) }
    public func jobs(_ query: JobQuery) async throws -> [Job] { try await base.jobs(query) }
    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry] { try await base.dueOutbox(channel, now: now, limit: limit) }
    public func markDelivered(_ ids: [String], at: Timestamp) async throws { try await base.markDelivered(ids, at: at) }
    public func markAttemptsFailed(_ attempts: [FailedAttempt]) async throws -> Set<String> {
        try await base.markAttemptsFailed(attempts)
    }
    public func queueStatistics(bucket: String?) async throws -> [QueueStatistics] { try await base.queueStatistics(bucket: bucket) }
    public func outboxStatistics() async throws -> OutboxStatistics { try await base.outboxStatistics() }
    public func deadOutbox(_ filter: DeliveryFilter, limit: Int) async throws -> [OutboxEntry] { try await base.deadOutbox(filter, limit: limit) }
    public func redriveDead(_ filter: DeliveryFilter, now: Timestamp) async throws -> Int { try await base.redriveDead(filter, now: now) }
    public func deliveries(of job: Job) async throws -> [OutboxDelivery] { try await base.deliveries(of: job) }
    public func activity(bucket: String, since: Timestamp, now: Timestamp) async throws -> JobActivity {
        try await base.activity(bucket: bucket, since: since, now: now)
    }
    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws { try await base.purgeIdempotencyKeys(before: cutoff) }
    public func jobIDs(idempotencyKey key: String) async throws -> [JobID]? { try await base.jobIDs(idempotencyKey: key) }
    public func purgeEnded(before cutoff: Timestamp, limit: Int, keeping: Set<JobID>) async throws -> PurgedRecords {
        try await base.purgeEnded(before: cutoff, limit: limit, keeping: keeping)
    }
    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry] {
        try await base.dueOutbox(channel, now: now, limit: limit, endpoints: endpoints)
    }
    public func deferOutbox(_ ids: [String], dueBy: Timestamp, until: Timestamp) async throws -> [String] { try await base.deferOutbox(ids, dueBy: dueBy, until: until) }
    public func leaseOutbox(
        _ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int, endpoints: EndpointFilter
    ) async throws -> [OutboxEntry] {
        try await base.leaseOutbox(channel, now: now, until: until, limit: limit, endpoints: endpoints)
    }
    public func signingSecrets(bucket: String) async throws -> SigningSecrets { try await base.signingSecrets(bucket: bucket) }
    public func rotateSigningSecret(bucket: String, now: Timestamp, grace: Duration) async throws -> SigningSecrets {
        try await base.rotateSigningSecret(bucket: bucket, now: now, grace: grace)
    }
    public func checkWritable() async throws { try await base.checkWritable() }
}
