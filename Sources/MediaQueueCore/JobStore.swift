import MediaQueueXML

/// The queue of record: buckets' queues, jobs, the callback outbox and idempotency keys, in one
/// transactional store.
///
/// Every method is one transaction. Drivers: `MemoryJobStore` (tests), SQLite, PostgreSQL.
public protocol JobStore: DefinitionStore, RunStore {
    // MARK: Queues

    /// The bucket's queue named `queue-1`, created (with `template`'s settings) the first time
    /// the bucket is used.
    func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue

    /// Adds a queue; throws `CIError` `InvalidArgument` if the bucket already has one by that name.
    func createQueue(_ queue: MediaQueue) async throws

    /// Queues of one bucket (or of every bucket), ordered by creation.
    func queues(bucket: String?) async throws -> [MediaQueue]

    func queue(id: QueueID) async throws -> MediaQueue?

    /// Reads the queue, lets `change` change it and stores the result, in one transaction, so
    /// that changes made at once (one operator pausing the queue while another edits its rule)
    /// each keep the other's; returns the queue as stored. Pausing turns its `Submitted` jobs into
    /// `Pause`; enabling turns `Pause` jobs back into `Submitted`, in their original order.
    func changeQueue(id: QueueID, _ change: @escaping @Sendable (inout MediaQueue) throws(CIError) -> Void) async throws -> MediaQueue

    /// Removes a queue that holds no unfinished job.
    func deleteQueue(id: QueueID) async throws

    /// Jobs of `bucket` submitted since `since`, by state, and how many of them ended in each
    /// minute of the hour before `now`.
    func activity(bucket: String, since: Timestamp, now: Timestamp) async throws -> JobActivity

    /// What each queue of `bucket` (or of every bucket) holds now: running jobs, waiting jobs
    /// per level and the oldest waiting one; queues in creation order.
    func queueStatistics(bucket: String?) async throws -> [QueueStatistics]

    // MARK: Jobs

    /// Stores each submission's jobs in one transaction. A submission whose idempotency key was
    /// seen before returns the jobs created then; one that would overfill its queue is refused.
    /// Jobs to a paused queue are stored as `Pause`. Sequence numbers are assigned here.
    func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome]

    /// The jobs a submission with idempotency key `key` created, nil when the key is not known:
    /// a retry the checks now refuse (its template deleted since) still gets its jobs.
    func jobIDs(idempotencyKey key: String) async throws -> [JobID]?

    func job(id: JobID) async throws -> Job?

    /// Claims up to `request.limit` jobs to run, in priority order per queue: queues `Active`,
    /// fewer than `MaxConcurrent` running, `JobLevel` descending then submission order. A
    /// `Running` job whose lease expired counts as waiting. Claimed jobs become `Running` with
    /// the lease.
    func claim(_ request: ClaimRequest) async throws -> ClaimResult

    /// `submit`, then `claim`, in one transaction: a process that both stores and runs jobs
    /// starts them without a claim transaction of its own. The claim chooses exactly as `claim`
    /// does, among every waiting job, not only the new ones.
    func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult)

    /// Extends the leases of jobs `owner` still holds; returns those it no longer holds.
    func renewLeases(_ ids: [JobID], owner: String, until: Timestamp) async throws -> [JobID]

    /// Gives a running job back to its queue (state `Submitted`, no lease), e.g. when its process
    /// shuts down before the job ended; it keeps its place in the order, and its claim does not
    /// count as an attempt (`Job.attempts` counts the starts a process's death ended).
    func release(_ ids: [JobID], owner: String) async throws

    /// Takes back the attempt that a claim by `owner` counted for jobs whose earlier run goes on
    /// in `owner`: their lease ended before a renewal came, and `owner`'s own claim took them
    /// again. That claim started nothing, and no process died. Jobs `owner` no longer holds are
    /// left alone.
    func uncountAttempts(_ ids: [JobID], owner: String) async throws

    /// Records progress of a running job.
    func updateProgress(_ id: JobID, progress: Int) async throws

    /// Ends jobs `owner` holds, each with its callback deliveries, all in one transaction (group
    /// commit: one write for many finished jobs). Returns, per job, false (and changes nothing for
    /// it) if the job is no longer held by `owner`.
    func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool]

    /// `finish`, then `claim`, in one transaction: the jobs that take the finished ones' places
    /// are claimed without a transaction of their own.
    func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult)

    /// Cancels a job: `Submitted` or `Pause` jobs end as `Cancel` at once; a `Running` job is
    /// marked so that the process running it stops it; a `Cancel` job is left as it is. Throws
    /// `CIError` for unknown jobs and for jobs that ended as `Success` or `Failed`.
    func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome

    /// Ids of running jobs held by `owner` that were asked to stop.
    func cancelRequests(owner: String) async throws -> [JobID]

    /// Jobs filtered and paged, for listing.
    func jobs(_ query: JobQuery) async throws -> [Job]

    // MARK: Outbox

    /// Deliveries over `channel` due at `now`, oldest first.
    func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry]

    func markDelivered(_ ids: [String], at: Timestamp) async throws

    /// Records failed attempts, in one transaction, on pending deliveries whose leases are still
    /// the caller's (each one's next attempt is at most its `leaseEnd`, the end of the lease the
    /// caller holds): each retried at its `nextAttempt`, or dead when that is nil. Returns the ids
    /// recorded. One delivered meanwhile, or taken by another relay after the caller's lease
    /// ended, is left as it is: that relay's attempt is the one that counts, and its lease stands.
    func markAttemptsFailed(_ attempts: [FailedAttempt]) async throws -> Set<String>

    /// Deliveries matching `filter` that exhausted their attempts, oldest first.
    func deadOutbox(_ filter: DeliveryFilter, limit: Int) async throws -> [OutboxEntry]

    /// Makes the dead deliveries matching `filter` due again with fresh attempts; returns how many.
    func redriveDead(_ filter: DeliveryFilter, now: Timestamp) async throws -> Int

    /// The callback deliveries of `job`, oldest first, with their status.
    func deliveries(of job: Job) async throws -> [OutboxDelivery]

    /// Like `dueOutbox`, only deliveries whose endpoint (`OutboxEntry.endpoint`) `endpoints`
    /// admits: the relays leave out endpoints (or regions) that cannot take more now, so that a
    /// backlog for one never hides due deliveries to others.
    func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry]

    /// Moves the next attempt of each pending delivery in `ids` whose next attempt is at or
    /// before `dueBy` to `until`, without counting an attempt; returns the ids it moved. The HTTP
    /// relay leases what it sends (`dueBy: now, until: now + lease`), so no other relay takes it
    /// and a crash only delays it; it hands back what it did not finish (`until: now`).
    func deferOutbox(_ ids: [String], dueBy: Timestamp, until: Timestamp) async throws -> [String]

    /// Takes up to `limit` deliveries over `channel` due at `now` for a relay, oldest first: in
    /// the transaction that reads them, their next attempt moves to `until` (the lease's end),
    /// so no relay's read returns them again before then. A relay that dies leaves them to
    /// whichever relay reads after `until`; one that fails records the attempt, which ends the
    /// lease. Of several relays reading at once, each delivery goes to one. Only deliveries whose
    /// endpoint `endpoints` admits are read: the TDMQ relay leaves out the regions whose broker
    /// has all it can take now, so that their backlog is not leased again and again for nothing,
    /// nor read ahead of other regions' deliveries.
    func leaseOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry]

    /// Pending and dead deliveries per channel, for metrics.
    func outboxStatistics() async throws -> OutboxStatistics

    // MARK: Callback signing

    /// The bucket's secrets for signing HTTP callbacks (`whsec_…`), the current one created the
    /// first time.
    func signingSecrets(bucket: String) async throws -> SigningSecrets

    /// Gives the bucket a new current secret; the one it replaces stays in use until
    /// `now + grace` (a secret still in its grace period is dropped). Returns the new secrets.
    func rotateSigningSecret(bucket: String, now: Timestamp, grace: Duration) async throws -> SigningSecrets

    // MARK: Housekeeping

    /// Forgets idempotency keys recorded before `cutoff`.
    func purgeIdempotencyKeys(before cutoff: Timestamp) async throws

    /// Removes, in one transaction, up to `limit` records of each kind that are over: jobs that
    /// were made and ended before `cutoff`, have no delivery still pending and are not in
    /// `keeping` (the tasks of running runs, whose later steps read them), deliveries (delivered
    /// or dead) queued before it, and runs that ended before it and whose end was announced.
    /// Waiting and running jobs, pending deliveries and running runs are never removed.
    func purgeEnded(before cutoff: Timestamp, limit: Int, keeping: Set<JobID>) async throws -> PurgedRecords

    /// Throws unless the store takes writes now (for readiness probes): takes the write lock and
    /// writes one small row. (A write that fits in space the database already holds may still
    /// succeed on a full disk; the intake reports its own failed writes to readiness too.)
    func checkWritable() async throws
}

/// What one `JobStore.purgeEnded` call removed.
public struct PurgedRecords: Sendable, Hashable {
    public var jobs: Int
    public var deliveries: Int
    public var runs: Int

    public init(jobs: Int = 0, deliveries: Int = 0, runs: Int = 0) {
        self.jobs = jobs
        self.deliveries = deliveries
        self.runs = runs
    }

    public var total: Int { jobs + deliveries + runs }
}

/// The smallest id a time-ordered id with `prefix` made at or after `time` can have: records
/// with ids below it were made before `time` (jobs `j`, deliveries `e`, runs `i`).
package func timeOrderedIDFloor(_ prefix: String, at time: Timestamp) -> String {
    prefix + timeOrderedHex32Floor(at: time)
}

/// The arguments of a claim (see `JobStore.claim`).
public struct ClaimRequest: Sendable, Hashable {
    public var owner: String
    public var now: Timestamp
    public var leaseUntil: Timestamp
    public var limit: Int

    public init(owner: String, now: Timestamp, leaseUntil: Timestamp, limit: Int) {
        self.owner = owner
        self.now = now
        self.leaseUntil = leaseUntil
        self.limit = limit
    }
}

/// What a claim took, and whether it may have left jobs waiting.
public struct ClaimResult: Sendable, Hashable {
    /// The claimed jobs, in dispatch order.
    public var jobs: [Job]
    /// False when no claimable job was left waiting when the claim ran; true when some may have
    /// been (the claim's limit or a queue's `MaxConcurrent` stopped it).
    public var moreWaiting: Bool

    public init(jobs: [Job], moreWaiting: Bool) {
        self.jobs = jobs
        self.moreWaiting = moreWaiting
    }
}

/// A job in its terminal state and the callback deliveries that announce it.
public struct FinishedJob: Sendable, Hashable {
    public var job: Job
    public var outbox: [OutboxEntry]

    public init(job: Job, outbox: [OutboxEntry]) {
        self.job = job
        self.outbox = outbox
    }
}

extension JobStore {
    /// Every dead delivery, oldest first.
    public func deadOutbox(limit: Int) async throws -> [OutboxEntry] {
        try await deadOutbox(DeliveryFilter(), limit: limit)
    }

    /// Makes every dead delivery due again; returns how many.
    public func redriveDead(now: Timestamp) async throws -> Int {
        try await redriveDead(DeliveryFilter(), now: now)
    }

    /// The jobs of `claim(_:)`.
    public func claimJobs(owner: String, now: Timestamp, leaseUntil: Timestamp, limit: Int) async throws -> [Job] {
        try await claim(ClaimRequest(owner: owner, now: now, leaseUntil: leaseUntil, limit: limit)).jobs
    }

    /// Ends one job (see `finish(_:owner:)`).
    public func finish(_ job: Job, owner: String, outbox: [OutboxEntry]) async throws -> Bool {
        try await finish([FinishedJob(job: job, outbox: outbox)], owner: owner).first ?? false
    }
}

extension JobStore {
    /// Every delivery due over `channel` (see `leaseOutbox(_:now:until:limit:endpoints:)`).
    public func leaseOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        try await leaseOutbox(channel, now: now, until: until, limit: limit, endpoints: .all)
    }

    /// A read, then a compare-and-set per delivery (`deferOutbox` moves only those still due):
    /// correct with several relays, in two store calls (the memory store's). A database's driver
    /// leases in the transaction that reads, so that relays on several nodes pass over the rows
    /// another is taking instead of reading them too.
    public func leaseOutbox(
        _ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int, endpoints: EndpointFilter
    ) async throws -> [OutboxEntry] {
        try await lease(try await dueOutbox(channel, now: now, limit: limit, endpoints: endpoints), now: now, until: until)
    }

    /// The deliveries of `due` whose lease this call took (those still due at `now`).
    private func lease(_ due: [OutboxEntry], now: Timestamp, until: Timestamp) async throws -> [OutboxEntry] {
        guard !due.isEmpty else { return [] }
        let leased = Set(try await deferOutbox(due.map(\.id), dueBy: now, until: until))
        return due.compactMap { entry in
            guard leased.contains(entry.id) else { return nil }
            var taken = entry
            taken.nextAttempt = until
            return taken
        }
    }

    /// Gives leases back before they end: each delivery is due again at `now` if its lease is
    /// still the one that ends at `leaseEnd`, so a lease another relay took since is left alone.
    /// Every lease end is tried; the first error is thrown after (the rest go out when their
    /// leases end).
    public func releaseLeases(_ leases: [(id: String, leaseEnd: Timestamp)], now: Timestamp) async throws {
        let held = Dictionary(grouping: leases.filter { $0.leaseEnd > now }, by: \.leaseEnd).mapValues { $0.map(\.id) }
        if let error = await moveLeases(held, to: now).firstError { throw error }
    }

    /// Moves the lease of each delivery in `held` (its ids by the lease end the caller holds) to
    /// end at `until`, if it is still the one that ends there: a compare-and-set per lease end,
    /// so a lease another relay took since is left alone. Every lease end is tried.
    public func moveLeases(_ held: [Timestamp: [String]], to until: Timestamp) async -> LeaseMove {
        var move = LeaseMove()
        for (leaseEnd, ids) in held {
            do {
                move.moved += try await deferOutbox(ids, dueBy: leaseEnd, until: until)
            } catch {
                move.unconfirmed[leaseEnd, default: []] += ids
                move.firstError = move.firstError ?? error
            }
        }
        return move
    }

    /// Filters `dueOutbox`'s answer: correct, but a driver should filter in its query so that
    /// deliveries left out do not use up `limit`.
    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry] {
        let due = try await dueOutbox(channel, now: now, limit: limit)
        return endpoints == .all ? due : due.filter { endpoints.admits($0.endpoint) }
    }

    /// `dueOutbox` without deliveries to `excludingEndpoints`.
    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, excludingEndpoints: Set<String>) async throws -> [OutboxEntry] {
        try await dueOutbox(channel, now: now, limit: limit, endpoints: .excluding(excludingEndpoints))
    }
}

/// What `JobStore.moveLeases` did.
public struct LeaseMove: Sendable {
    /// The deliveries whose lease now ends at the new end.
    public var moved: [String] = []
    /// The deliveries whose write failed, by the lease end the caller held: it still holds that
    /// end unless the write committed without the caller hearing so.
    public var unconfirmed: [Timestamp: [String]] = [:]
    /// The first write's error, if any failed.
    public var firstError: (any Error)?
}

/// A delivery's failed attempt, to be recorded (`JobStore.markAttemptsFailed`).
public struct FailedAttempt: Sendable, Hashable {
    public var id: String
    public var error: String
    /// When it is tried next; nil: it is dead.
    public var nextAttempt: Timestamp?
    /// The end of the lease the recording relay holds on it.
    public var leaseEnd: Timestamp

    public init(id: String, error: String, nextAttempt: Timestamp?, leaseEnd: Timestamp) {
        self.id = id
        self.error = error
        self.nextAttempt = nextAttempt
        self.leaseEnd = leaseEnd
    }
}

extension JobStore {
    /// `markAttemptsFailed` for one delivery: whether it was recorded.
    @discardableResult
    public func markAttemptFailed(_ id: String, error: String, nextAttempt: Timestamp?, leaseEnd: Timestamp) async throws -> Bool {
        try await markAttemptsFailed([FailedAttempt(id: id, error: error, nextAttempt: nextAttempt, leaseEnd: leaseEnd)]).contains(id)
    }
}

/// Which deliveries an outbox read takes, by their endpoint (`OutboxEntry.endpoint`).
public enum EndpointFilter: Sendable, Hashable {
    /// All but those to these endpoints.
    case excluding(Set<String>)
    /// Only those to these endpoints.
    case only(Set<String>)

    public static let all = EndpointFilter.excluding([])

    public func admits(_ endpoint: String) -> Bool {
        switch self {
        case .excluding(let excluded): !excluded.contains(endpoint)
        case .only(let included): included.contains(endpoint)
        }
    }
}

/// Jobs that one submission (one AMQP message or one HTTP request) creates.
public struct Submission: Sendable, Hashable {
    /// The AMQP `message-id` or `ClientToken`; nil when the client gave none.
    public var idempotencyKey: String?
    public var jobs: [Job]

    public init(idempotencyKey: String?, jobs: [Job]) {
        self.idempotencyKey = idempotencyKey
        self.jobs = jobs
    }

    /// How many of the jobs go to each queue, in the order the queues first appear. A submission
    /// names one queue or a few, so a list searched in place costs less than a dictionary.
    public var jobsPerQueue: [(queue: QueueID, count: Int)] {
        var counts: [(queue: QueueID, count: Int)] = []
        for job in jobs {
            if let index = counts.firstIndex(where: { $0.queue == job.queueID }) {
                counts[index].count += 1
            } else {
                counts.append((job.queueID, 1))
            }
        }
        return counts
    }
}

public enum SubmissionOutcome: Sendable, Hashable {
    /// Stored now (with sequence numbers and initial state).
    case created([Job])
    /// The same key was submitted before; these are the jobs it created.
    case duplicate([JobID])
    /// Not stored, for this reason.
    case refused(CIError)
}

public enum CancelOutcome: Sendable, Hashable {
    /// The job was waiting and is now `Cancel`.
    case cancelled(Job)
    /// The job is running; its process will stop it.
    case stopping(Job)
    /// The job had been cancelled before: a repeated cancel (a client's retry) changes nothing.
    case alreadyCancelled(Job)
}

/// A filter for listing jobs.
public struct JobQuery: Sendable, Hashable {
    public var bucket: String?
    public var queueID: QueueID?
    public var tag: String?
    public var states: Set<JobState>
    public var createdFrom: Timestamp?
    public var createdTo: Timestamp?
    /// Only the jobs of this workflow's runs (their Operation's `Workflow.WorkflowId`).
    public var workflowID: String?
    /// Only the jobs whose `Input.Object` is this key, exactly.
    public var inputObject: String?
    public var newestFirst: Bool
    /// Continue after this sequence number (the previous page's last).
    public var after: Int64?
    public var limit: Int

    public init(
        bucket: String? = nil, queueID: QueueID? = nil, tag: String? = nil, states: Set<JobState> = [],
        createdFrom: Timestamp? = nil, createdTo: Timestamp? = nil, newestFirst: Bool = true,
        after: Int64? = nil, limit: Int = 10
    ) {
        self.bucket = bucket
        self.queueID = queueID
        self.tag = tag
        self.states = states
        self.createdFrom = createdFrom
        self.createdTo = createdTo
        self.newestFirst = newestFirst
        self.after = after
        self.limit = limit
    }
}

extension JobQuery {
    /// For stores that keep a job's Operation and Input as XML text: what the Operation text of
    /// a job of `workflowID` contains, and what the Input text of a job on `inputObject` does.
    public var storedTextNeedles: (operation: String?, input: String?) {
        (workflowID.map { XMLTree("WorkflowId", text: $0).xmlString() }, inputObject.map { XMLTree("Object", text: $0).xmlString() })
    }

    /// Whether `job` is one the query asks for, by `workflowID` and `inputObject` (the rest is
    /// the store's own).
    public func matchesContent(_ job: Job) -> Bool {
        (workflowID == nil || job.operation["Workflow"]?.text("WorkflowId") == workflowID)
            && (inputObject == nil || job.input.text("Object") == inputObject)
    }
}

/// One callback delivery waiting in the transactional outbox.
public struct OutboxEntry: Sendable, Hashable {
    /// The event id: stable across retries (AMQP `message-id`, `webhook-id`).
    public var id: String
    public var jobID: JobID
    public var bucket: String
    public var target: CallbackTarget.Destination
    /// AMQP routing key for topic delivery (`job.<QueueId>.<Tag>.<State>`).
    public var routingKey: String
    public var body: [UInt8]
    public var contentType: String
    public var attempts: Int
    public var nextAttempt: Timestamp
    public var createdAt: Timestamp
    public var lastError: String?

    public init(
        id: String = "e" + timeOrderedHex32(), jobID: JobID, bucket: String, target: CallbackTarget.Destination,
        routingKey: String, body: [UInt8], contentType: String, attempts: Int = 0, nextAttempt: Timestamp,
        createdAt: Timestamp, lastError: String? = nil
    ) {
        self.id = id
        self.jobID = jobID
        self.bucket = bucket
        self.target = target
        self.routingKey = routingKey
        self.body = body
        self.contentType = contentType
        self.attempts = attempts
        self.nextAttempt = nextAttempt
        self.createdAt = createdAt
        self.lastError = lastError
    }

    /// What the entry announces: a run's end (`WorkflowFinish`, routed `workflow.…`) or a job's.
    public var event: NotifyConfig.Event { routingKey.hasPrefix("workflow.") ? .workflowFinish : .taskFinish }

    /// The header naming what the event is about: `x-ci-job-id` with a JobId, or for a
    /// WorkflowFinish `x-ci-run-id` with its RunId (which `jobID` holds then).
    public var subjectHeader: (name: String, value: String) {
        (event == .workflowFinish ? "x-ci-run-id" : "x-ci-job-id", jobID.rawValue)
    }

    /// The outbox entry that announces `job`'s end to `target`.
    public static func taskFinish(_ job: Job, target: CallbackTarget, formatting: CIFormatting, now: Timestamp) -> OutboxEntry {
        let body = CallbackBody.taskFinish(job, format: target.format, formatting: formatting)
        return OutboxEntry(
            jobID: job.id, bucket: job.bucket, target: target.destination,
            routingKey: "job.\(job.queueID.rawValue).\(job.tag).\(job.state.rawValue)",
            body: body.bytes, contentType: body.contentType, nextAttempt: now, createdAt: now
        )
    }
}

extension JobStore {
    /// The bucket's current secret for signing HTTP callbacks, created the first time.
    public func webhookSecret(bucket: String) async throws -> String {
        try await signingSecrets(bucket: bucket).current
    }
}

extension JobStore {
    /// Stores `queue` whole, as it is: for a caller that owns every setting (tests, a queue just
    /// made). Changes of some settings go through `changeQueue`.
    public func updateQueue(_ queue: MediaQueue) async throws {
        _ = try await changeQueue(id: queue.id) { $0 = queue }
    }
}
