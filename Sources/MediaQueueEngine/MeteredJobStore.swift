public import MediaQueueCore

/// A `JobStore` that measures the store it wraps: the duration of every transaction, jobs
/// submitted, started and ended (with their wait and run times), as the store reports them, so
/// every path (intake, API, CLI, dispatcher, cancel) is counted once, where it commits.
public struct MeteredJobStore: JobStore {
    public let base: any JobStore
    let metrics: EngineMetrics

    public init(_ base: any JobStore, metrics: EngineMetrics) {
        self.base = base
        self.metrics = metrics
    }

    private func timed<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        defer { metrics.storeTransaction(operation, ContinuousClock.now - start) }
        return try await body()
    }

    private func counted(_ outcomes: [SubmissionOutcome]) {
        for case .created(let jobs) in outcomes { metrics.jobsSubmitted(jobs) }
    }

    private func counted(_ finished: [FinishedJob], recorded: [Bool]) {
        metrics.jobsEnded(zip(finished, recorded).compactMap { $1 ? $0.job : nil })
    }

    // MARK: Queues

    public func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue {
        try await timed("ensureDefaultQueue") { try await base.ensureDefaultQueue(bucket: bucket, template: template) }
    }

    public func createQueue(_ queue: MediaQueue) async throws {
        try await timed("createQueue") { try await base.createQueue(queue) }
    }

    public func queues(bucket: String?) async throws -> [MediaQueue] {
        try await timed("queues") { try await base.queues(bucket: bucket) }
    }

    public func queue(id: QueueID) async throws -> MediaQueue? {
        try await timed("queue") { try await base.queue(id: id) }
    }

    public func changeQueue(id: QueueID, _ change: @escaping @Sendable (inout MediaQueue) throws(CIError) -> Void) async throws -> MediaQueue {
        try await timed("changeQueue") { try await base.changeQueue(id: id, change) }
    }

    public func deleteQueue(id: QueueID) async throws {
        try await timed("deleteQueue") { try await base.deleteQueue(id: id) }
    }

    public func activity(bucket: String, since: Timestamp, now: Timestamp) async throws -> JobActivity {
        try await timed("activity") { try await base.activity(bucket: bucket, since: since, now: now) }
    }

    public func queueStatistics(bucket: String?) async throws -> [QueueStatistics] {
        try await timed("queueStatistics") { try await base.queueStatistics(bucket: bucket) }
    }

    // MARK: Jobs

    public func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        let outcomes = try await timed("submit") { try await base.submit(submissions) }
        counted(outcomes)
        return outcomes
    }

    public func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult) {
        let result = try await timed("submitAndClaim") { try await base.submit(submissions, thenClaim: claim) }
        counted(result.outcomes)
        metrics.jobsStarted(result.claim.jobs, claimedAt: claim.now)
        return result
    }

    public func job(id: JobID) async throws -> Job? {
        try await timed("job") { try await base.job(id: id) }
    }

    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        let result = try await timed("claim") { try await base.claim(request) }
        metrics.jobsStarted(result.jobs, claimedAt: request.now)
        return result
    }

    public func renewLeases(_ ids: [JobID], owner: String, until: Timestamp) async throws -> [JobID] {
        try await timed("renewLeases") { try await base.renewLeases(ids, owner: owner, until: until) }
    }

    public func release(_ ids: [JobID], owner: String) async throws {
        try await timed("release") { try await base.release(ids, owner: owner) }
    }

    public func uncountAttempts(_ ids: [JobID], owner: String) async throws {
        try await timed("uncountAttempts") { try await base.uncountAttempts(ids, owner: owner) }
    }

    public func updateProgress(_ id: JobID, progress: Int) async throws {
        try await timed("updateProgress") { try await base.updateProgress(id, progress: progress) }
    }

    public func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool] {
        let recorded = try await timed("finish") { try await base.finish(jobs, owner: owner) }
        counted(jobs, recorded: recorded)
        return recorded
    }

    public func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult) {
        let result = try await timed("finishAndClaim") { try await base.finish(jobs, owner: owner, thenClaim: claim) }
        counted(jobs, recorded: result.recorded)
        metrics.jobsStarted(result.claim.jobs, claimedAt: claim.now)
        return result
    }

    public func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome {
        let outcome = try await timed("cancel") { try await base.cancel(id, now: now) }
        // A running job is counted when the process running it records its end.
        if case .cancelled(let job) = outcome { metrics.jobsEnded([job]) }
        return outcome
    }

    public func cancelRequests(owner: String) async throws -> [JobID] {
        try await timed("cancelRequests") { try await base.cancelRequests(owner: owner) }
    }

    public func jobs(_ query: JobQuery) async throws -> [Job] {
        try await timed("jobs") { try await base.jobs(query) }
    }

    // MARK: Outbox

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        try await timed("dueOutbox") { try await base.dueOutbox(channel, now: now, limit: limit) }
    }

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry] {
        try await timed("dueOutbox") { try await base.dueOutbox(channel, now: now, limit: limit, endpoints: endpoints) }
    }

    public func leaseOutbox(
        _ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int, endpoints: EndpointFilter
    ) async throws -> [OutboxEntry] {
        try await timed("leaseOutbox") { try await base.leaseOutbox(channel, now: now, until: until, limit: limit, endpoints: endpoints) }
    }

    public func deferOutbox(_ ids: [String], dueBy: Timestamp, until: Timestamp) async throws -> [String] {
        try await timed("deferOutbox") { try await base.deferOutbox(ids, dueBy: dueBy, until: until) }
    }

    public func markDelivered(_ ids: [String], at: Timestamp) async throws {
        try await timed("markDelivered") { try await base.markDelivered(ids, at: at) }
    }

    public func markAttemptsFailed(_ attempts: [FailedAttempt]) async throws -> Set<String> {
        try await timed("markAttemptsFailed") { try await base.markAttemptsFailed(attempts) }
    }

    public func deadOutbox(_ filter: DeliveryFilter, limit: Int) async throws -> [OutboxEntry] {
        try await timed("deadOutbox") { try await base.deadOutbox(filter, limit: limit) }
    }

    public func redriveDead(_ filter: DeliveryFilter, now: Timestamp) async throws -> Int {
        try await timed("redriveDead") { try await base.redriveDead(filter, now: now) }
    }

    public func deliveries(of job: Job) async throws -> [OutboxDelivery] {
        try await timed("deliveries") { try await base.deliveries(of: job) }
    }

    public func outboxStatistics() async throws -> OutboxStatistics {
        try await timed("outboxStatistics") { try await base.outboxStatistics() }
    }

    // MARK: Signing and housekeeping

    public func signingSecrets(bucket: String) async throws -> SigningSecrets {
        try await timed("signingSecrets") { try await base.signingSecrets(bucket: bucket) }
    }

    public func rotateSigningSecret(bucket: String, now: Timestamp, grace: Duration) async throws -> SigningSecrets {
        try await timed("rotateSigningSecret") { try await base.rotateSigningSecret(bucket: bucket, now: now, grace: grace) }
    }

    public func jobIDs(idempotencyKey key: String) async throws -> [JobID]? {
        try await timed("jobIDsForIdempotencyKey") { try await base.jobIDs(idempotencyKey: key) }
    }

    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws {
        try await timed("purgeIdempotencyKeys") { try await base.purgeIdempotencyKeys(before: cutoff) }
    }

    public func purgeEnded(before cutoff: Timestamp, limit: Int, keeping: Set<JobID>) async throws -> PurgedRecords {
        try await timed("purgeEnded") { try await base.purgeEnded(before: cutoff, limit: limit, keeping: keeping) }
    }

    public func checkWritable() async throws {
        try await timed("checkWritable") { try await base.checkWritable() }
    }

    // MARK: Definitions (not on a hot path: passed on unmeasured)

    public func createDefinition(_ definition: Definition) async throws { try await base.createDefinition(definition) }
    public func updateDefinition(_ definition: Definition) async throws { try await base.updateDefinition(definition) }
    public func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] { try await base.definitions(kind, bucket: bucket) }
    public func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? { try await base.definition(kind, id: id) }
    public func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws {
        try await base.deleteDefinition(kind, id: id, bucket: bucket)
    }

    // MARK: Runs (not on a hot path: not timed, but the jobs they store are counted)

    public func createRun(_ run: WorkflowRun, jobs: [Job]) async throws -> WorkflowRun {
        let stored = try await base.createRun(run, jobs: jobs)
        // Another run of the same origin, returned instead, stored nothing.
        if stored.id == run.id { metrics.jobsSubmitted(jobs) }
        return stored
    }

    public func updateRun(_ run: WorkflowRun, jobs: [Job], outbox: [OutboxEntry]) async throws -> Bool {
        let updated = try await base.updateRun(run, jobs: jobs, outbox: outbox)
        if updated { metrics.jobsSubmitted(jobs) }
        return updated
    }
    public func run(id: String) async throws -> WorkflowRun? { try await base.run(id: id) }
    public func recordArrival(_ arrival: Arrival) async throws { try await base.recordArrival(arrival) }
    public func removeArrival(id: String) async throws { try await base.removeArrival(id: id) }
    public func arrivals(before cutoff: Timestamp, after: Arrival?, limit: Int) async throws -> [Arrival] {
        try await base.arrivals(before: cutoff, after: after, limit: limit)
    }
    public func runs(_ query: RunQuery) async throws -> [WorkflowRun] { try await base.runs(query) }
    public func runningRuns(after sequence: Int64, limit: Int) async throws -> [WorkflowRun] {
        try await base.runningRuns(after: sequence, limit: limit)
    }
}
