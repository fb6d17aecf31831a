import Synchronization

/// A `JobStore` in memory, with the same semantics as the database drivers, for unit tests.
public final class MemoryJobStore: JobStore {
    struct State {
        var queues: [QueueID: MediaQueue] = [:]
        var queueOrder: [QueueID] = []
        var jobs: [JobID: Job] = [:]
        var nextSequence: Int64 = 1
        var keys: [String: (ids: [JobID], at: Timestamp)] = [:]
        var outbox: [String: OutboxEntry] = [:]
        var delivered: Set<String> = []
        var deliveredAt: [String: Timestamp] = [:]
        var dead: Set<String> = []
        var webhookSecrets: [String: SigningSecrets] = [:]
        var definitions: [String: Definition] = [:]
        var runs: [String: WorkflowRun] = [:]
        var arrivals: [String: Arrival] = [:]
        var nextRunSequence: Int64 = 1
        /// The `now` of the latest outbox reads, for tests that wait for a relay to have looked.
        var outboxReadTimes: [Timestamp] = []
        /// How many of the next `markDelivered` and `markAttemptsFailed` calls fail (`failNextRecordings`).
        var recordingFailures = 0
        /// How many of the next `renewLeases` calls fail (`failNextLeaseRenewals`).
        var renewalFailures = 0
        /// How many of the next `finish` calls fail (`failNextFinishes`).
        var finishFailures = 0
        /// How many of the next `signingSecrets` calls fail (`failNextSecretReads`).
        var secretReadFailures = 0
        /// How many of the next `updateRun` calls fail (`failNextRunUpdates`).
        var runUpdateFailures = 0

        mutating func failFinishIfAsked() throws {
            guard finishFailures > 0 else { return }
            finishFailures -= 1
            throw WriteFailed()
        }

        mutating func failIfAsked() throws {
            guard recordingFailures > 0 else { return }
            recordingFailures -= 1
            throw WriteFailed()
        }
    }

    /// What a store that cannot be written (a locked file, a server out of reach) throws.
    public struct WriteFailed: Error {}

    let state = Mutex(State())
    private let time: any TimeSource
    private let claimHook = Mutex<(@Sendable (ClaimResult) async -> Void)?>(nil)
    private let releaseHook = Mutex<(@Sendable ([JobID]) async -> Void)?>(nil)
    private let failedAttemptHook = Mutex<(@Sendable (String) async -> Void)?>(nil)

    public init(time: any TimeSource = SystemTimeSource()) {
        self.time = time
    }

    public func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue {
        state.withLock { state in
            let queues = state.queues
            if let existing = state.queueOrder.compactMap({ queues[$0] })
                .first(where: { $0.bucket == bucket && $0.name == MediaQueue.defaultName }) {
                return existing
            }
            var queue = template
            queue.bucket = bucket
            queue.name = MediaQueue.defaultName
            state.queues[queue.id] = queue
            state.queueOrder.append(queue.id)
            return queue
        }
    }

    public func createQueue(_ queue: MediaQueue) async throws {
        try state.withLock { state throws(CIError) in
            if state.queues.values.contains(where: { $0.bucket == queue.bucket && $0.name == queue.name }) {
                throw CIError.queueNameTaken(queue.name)
            }
            state.queues[queue.id] = queue
            state.queueOrder.append(queue.id)
        }
    }

    public func queues(bucket: String?) async throws -> [MediaQueue] {
        state.withLock { state in
            state.queueOrder.compactMap { state.queues[$0] }.filter { bucket == nil || $0.bucket == bucket }
        }
    }

    public func queue(id: QueueID) async throws -> MediaQueue? {
        state.withLock { $0.queues[id] }
    }

    public func changeQueue(id: QueueID, _ change: @escaping @Sendable (inout MediaQueue) throws(CIError) -> Void) async throws -> MediaQueue {
        try state.withLock { state throws(CIError) in
            guard let old = state.queues[id] else { throw CIError(.noSuchQueue, "queue \(id) does not exist", element: "QueueId") }
            var queue = old
            try change(&queue)
            if state.queues.values.contains(where: { $0.id != queue.id && $0.bucket == queue.bucket && $0.name == queue.name }) {
                throw CIError.queueNameTaken(queue.name)
            }
            state.queues[queue.id] = queue
            guard old.state != queue.state else { return queue }
            let (from, to): (JobState, JobState) = queue.state == .paused ? (.submitted, .pause) : (.pause, .submitted)
            for (id, job) in state.jobs where job.queueID == queue.id && job.state == from {
                state.jobs[id]?.state = to
            }
            return queue
        }
    }

    public func deleteQueue(id: QueueID) async throws {
        try state.withLock { state throws(CIError) in
            guard state.queues[id] != nil else { throw CIError(.noSuchQueue, "queue \(id) does not exist") }
            if state.jobs.values.contains(where: { $0.queueID == id && !$0.state.isTerminal }) {
                throw CIError(.invalidArgument, "queue \(id) still holds unfinished jobs", element: "QueueId")
            }
            state.queues[id] = nil
            state.queueOrder.removeAll { $0 == id }
        }
    }

    public func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        state.withLock { store(submissions, in: &$0) }
    }

    public func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult) {
        state.withLock { state in
            let outcomes = store(submissions, in: &state)
            return (outcomes, Self.claim(claim, in: &state))
        }
    }

    func store(_ submissions: [Submission], in state: inout State) -> [SubmissionOutcome] {
        submissions.map { submission in
            if let key = submission.idempotencyKey, let seen = state.keys[key] {
                return .duplicate(seen.ids)
            }
            for (queueID, count) in submission.jobsPerQueue {
                guard let queue = state.queues[queueID] else {
                    return .refused(CIError(.noSuchQueue, "queue \(queueID) does not exist", element: "QueueId"))
                }
                let waiting = state.jobs.values.count { $0.queueID == queueID && !$0.state.isTerminal }
                if waiting + count > queue.maxSize {
                    return .refused(CIError(.queueFull, "queue \(queueID) already holds \(waiting) unfinished jobs (MaxSize \(queue.maxSize))", element: "QueueId"))
                }
            }
            var created: [Job] = []
            for var job in submission.jobs {
                job.sequence = state.nextSequence
                state.nextSequence += 1
                job.state = state.queues[job.queueID]?.state == .paused ? .pause : .submitted
                state.jobs[job.id] = job
                created.append(job)
            }
            if let key = submission.idempotencyKey {
                state.keys[key] = (created.map(\.id), time.now)
            }
            return .created(created)
        }
    }

    public func job(id: JobID) async throws -> Job? {
        state.withLock { $0.jobs[id] }
    }

    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        let result = state.withLock { Self.claim(request, in: &$0) }
        if let hook = claimHook.withLock({ $0 }) { await hook(result) }
        return result
    }

    private static func claim(_ request: ClaimRequest, in state: inout State) -> ClaimResult {
        let (owner, now, leaseUntil, limit) = (request.owner, request.now, request.leaseUntil, request.limit)
        var claimed: [Job] = []
        var moreWaiting = false
        for queueID in state.queueOrder {
            guard let queue = state.queues[queueID], queue.state == .active else { continue }
            let inQueue = state.jobs.values.filter { $0.queueID == queueID }
            let running = inQueue.count { $0.state == .running && ($0.lease?.expiresAt ?? now) > now }
            let free = min(queue.maxConcurrent - running, limit - claimed.count)
            let waiting = inQueue
                .filter { $0.state == .submitted || ($0.state == .running && ($0.lease?.expiresAt ?? now) <= now) }
                .sorted { ($0.jobLevel, -$0.sequence) > ($1.jobLevel, -$1.sequence) }
            if waiting.count > max(free, 0) { moreWaiting = true }
            guard free > 0 else { continue }
            for var job in waiting.prefix(free) {
                job.state = .running
                job.startTime = job.startTime ?? now
                job.lease = Job.Lease(owner: owner, expiresAt: leaseUntil)
                job.attempts += 1
                state.jobs[job.id] = job
                claimed.append(job)
            }
        }
        return ClaimResult(jobs: claimed, moreWaiting: moreWaiting)
    }

    public func renewLeases(_ ids: [JobID], owner: String, until: Timestamp) async throws -> [JobID] {
        try state.withLock { state in
            if state.renewalFailures > 0 {
                state.renewalFailures -= 1
                throw WriteFailed()
            }
            var lost: [JobID] = []
            for id in ids {
                if let job = state.jobs[id], job.state == .running, job.lease?.owner == owner {
                    state.jobs[id]?.lease?.expiresAt = until
                } else {
                    lost.append(id)
                }
            }
            return lost
        }
    }

    public func release(_ ids: [JobID], owner: String) async throws {
        state.withLock { state in
            for id in ids {
                guard var job = state.jobs[id], job.state == .running, job.lease?.owner == owner else { continue }
                job.state = .submitted
                job.lease = nil
                job.attempts = max(job.attempts - 1, 0)
                state.jobs[id] = job
            }
        }
        if let hook = releaseHook.withLock({ $0 }) { await hook(ids) }
    }

    public func uncountAttempts(_ ids: [JobID], owner: String) async throws {
        state.withLock { state in
            for id in ids {
                guard let job = state.jobs[id], job.state == .running, job.lease?.owner == owner else { continue }
                state.jobs[id]?.attempts = max(job.attempts - 1, 1)
            }
        }
    }

    public func updateProgress(_ id: JobID, progress: Int) async throws {
        state.withLock { state in
            if state.jobs[id]?.state == .running { state.jobs[id]?.progress = progress }
        }
    }

    public func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool] {
        try state.withLock { state in
            try state.failFinishIfAsked()
            return Self.finish(jobs, owner: owner, in: &state)
        }
    }

    public func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult) {
        try state.withLock { state in
            try state.failFinishIfAsked()
            let recorded = Self.finish(jobs, owner: owner, in: &state)
            return (recorded, Self.claim(claim, in: &state))
        }
    }

    private static func finish(_ jobs: [FinishedJob], owner: String, in state: inout State) -> [Bool] {
        jobs.map { finished in
            let job = finished.job
            guard let current = state.jobs[job.id], current.state == .running, current.lease?.owner == owner else { return false }
            var ended = job
            ended.lease = nil
            state.jobs[job.id] = ended
            for entry in finished.outbox { state.outbox[entry.id] = entry }
            return true
        }
    }

    public func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome {
        try state.withLock { state throws(CIError) in
            guard var job = state.jobs[id] else { throw CIError(.noSuchJob, "job \(id) does not exist") }
            switch job.state {
            case .submitted, .pause:
                job.state = .cancel
                job.endTime = now
                state.jobs[id] = job
                return .cancelled(job)
            case .running:
                job.cancelRequested = true
                state.jobs[id] = job
                return .stopping(job)
            case .cancel:
                return .alreadyCancelled(job)
            case .success, .failed:
                throw CIError(.invalidJobState, "job \(id) has already ended as \(job.state.rawValue)")
            }
        }
    }

    public func cancelRequests(owner: String) async throws -> [JobID] {
        state.withLock { state in
            state.jobs.values.filter { $0.state == .running && $0.cancelRequested && $0.lease?.owner == owner }.map(\.id)
        }
    }

    public func queueStatistics(bucket: String?) async throws -> [QueueStatistics] {
        state.withLock { state in
            var statistics = state.queueOrder.compactMap { state.queues[$0] }
                .filter { bucket == nil || $0.bucket == bucket }
                .map { QueueStatistics(queueID: $0.id, bucket: $0.bucket) }
            let index = Dictionary(uniqueKeysWithValues: statistics.enumerated().map { ($1.queueID, $0) })
            for job in state.jobs.values where !job.state.isTerminal {
                guard let position = index[job.queueID] else { continue }
                statistics[position].count(state: job.state, level: job.jobLevel, created: job.creationTime)
            }
            return statistics
        }
    }

    public func jobs(_ query: JobQuery) async throws -> [Job] {
        state.withLock { state in
            let matching = state.jobs.values.filter { job in
                (query.bucket == nil || job.bucket == query.bucket)
                    && (query.queueID == nil || job.queueID == query.queueID)
                    && (query.tag == nil || job.tag == query.tag)
                    && (query.states.isEmpty || query.states.contains(job.state))
                    && (query.createdFrom.map { job.creationTime >= $0 } ?? true)
                    && (query.createdTo.map { job.creationTime <= $0 } ?? true)
                    && (query.after.map { query.newestFirst ? job.sequence < $0 : job.sequence > $0 } ?? true)
                    && query.matchesContent(job)
            }
            let sorted = matching.sorted { query.newestFirst ? $0.sequence > $1.sequence : $0.sequence < $1.sequence }
            return Array(sorted.prefix(query.limit))
        }
    }

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        state.withLock { state in
            Self.recordRead(now, in: &state)
            return Array(state.outbox.values
                .filter { !state.delivered.contains($0.id) && !state.dead.contains($0.id) && $0.nextAttempt <= now }
                .filter { $0.target.channel == channel }
                .sorted { ($0.nextAttempt, $0.createdAt) < ($1.nextAttempt, $1.createdAt) }
                .prefix(limit))
        }
    }

    private static func recordRead(_ now: Timestamp, in state: inout State) {
        if state.outboxReadTimes.count >= 1024 { state.outboxReadTimes.removeFirst(512) }
        state.outboxReadTimes.append(now)
    }

    /// How many of the latest outbox reads (by a relay) asked for what was due at `time` or later:
    /// a test that moved its clock waits for reads at the new time before it checks what was sent.
    public func outboxReads(atOrAfter time: Timestamp) -> Int {
        state.withLock { state in state.outboxReadTimes.count { $0 >= time } }
    }

    /// The delivery as stored, pending or dead, without reading it as due; nil once delivered
    /// (or never stored).
    public func outboxEntry(id: String) -> OutboxEntry? {
        state.withLock { state in state.delivered.contains(id) ? nil : state.outbox[id] }
    }

    /// Makes the next `count` calls of `markDelivered` or `markAttemptsFailed` throw `WriteFailed`
    /// and record nothing, for tests of what a relay does when the store cannot record what it sent.
    public func failNextRecordings(_ count: Int) {
        state.withLock { $0.recordingFailures = count }
    }

    /// Makes the next `count` calls of `finish` throw `WriteFailed` and end nothing, for tests of
    /// what a dispatcher does when the end of a job cannot be written.
    public func failNextFinishes(_ count: Int) {
        state.withLock { $0.finishFailures = count }
    }

    /// How many of the failures `failNextFinishes` asked for are still to come.
    public var finishFailuresLeft: Int { state.withLock { $0.finishFailures } }

    /// Makes the next `count` calls of `renewLeases` throw `WriteFailed` and renew nothing, for
    /// tests of what a dispatcher does when its leases cannot be renewed.
    public func failNextLeaseRenewals(_ count: Int) {
        state.withLock { $0.renewalFailures = count }
    }

    /// Makes the next `count` calls of `signingSecrets` fail, as a store out of reach would.
    public func failNextSecretReads(_ count: Int) {
        state.withLock { $0.secretReadFailures = count }
    }

    /// Makes the next `count` calls of `updateRun` fail and change nothing, as a store out of
    /// reach would.
    public func failNextRunUpdates(_ count: Int) {
        state.withLock { $0.runUpdateFailures = count }
    }

    /// Runs `hook` with the result of every later `claim`, after the claim took its jobs and
    /// before the caller gets them: a test can hold a claimer there.
    public func afterEachClaim(_ hook: @escaping @Sendable (ClaimResult) async -> Void) {
        claimHook.withLock { $0 = hook }
    }

    /// Runs `hook` with the ids of every later `release`, once it released them and before the
    /// caller goes on: a test can hold a releaser there.
    public func afterEachRelease(_ hook: @escaping @Sendable ([JobID]) async -> Void) {
        releaseHook.withLock { $0 = hook }
    }

    /// Runs `hook` with the delivery id of every later failed attempt (`markAttemptsFailed`), before it records
    /// the attempt: a test can hold a relay there.
    public func beforeEachFailedAttempt(_ hook: @escaping @Sendable (String) async -> Void) {
        failedAttemptHook.withLock { $0 = hook }
    }

    /// How many of the failures `failNextLeaseRenewals` asked for are still to come.
    public var leaseRenewalFailuresLeft: Int { state.withLock { $0.renewalFailures } }

    /// How many of the failures `failNextRecordings` asked for are still to come.
    public var recordingFailuresLeft: Int { state.withLock { $0.recordingFailures } }

    public func markDelivered(_ ids: [String], at: Timestamp) async throws {
        guard !ids.isEmpty else { return }
        try state.withLock { state in
            try state.failIfAsked()
            for id in ids where state.outbox[id] != nil {
                state.delivered.insert(id)
                state.deliveredAt[id] = state.deliveredAt[id] ?? at
                state.outbox[id]?.attempts += 1
            }
        }
    }

    public func markAttemptsFailed(_ attempts: [FailedAttempt]) async throws -> Set<String> {
        guard !attempts.isEmpty else { return [] }
        if let hook = failedAttemptHook.withLock({ $0 }) {
            for attempt in attempts { await hook(attempt.id) }
        }
        return try state.withLock { state in
            try state.failIfAsked()
            var recorded: Set<String> = []
            for attempt in attempts {
                let id = attempt.id
                guard let entry = state.outbox[id], !state.delivered.contains(id), !state.dead.contains(id), entry.nextAttempt <= attempt.leaseEnd
                else { continue }
                state.outbox[id]?.attempts += 1
                state.outbox[id]?.lastError = attempt.error
                if let nextAttempt = attempt.nextAttempt {
                    state.outbox[id]?.nextAttempt = nextAttempt
                } else {
                    state.dead.insert(id)
                }
                recorded.insert(id)
            }
            return recorded
        }
    }

    public func outboxStatistics() async throws -> OutboxStatistics {
        state.withLock { state in
            var statistics = OutboxStatistics()
            for entry in state.outbox.values where !state.delivered.contains(entry.id) {
                let channel = entry.target.channel
                if state.dead.contains(entry.id) {
                    statistics.dead[channel, default: 0] += 1
                } else {
                    statistics.pending[channel, default: 0] += 1
                }
            }
            return statistics
        }
    }

    public func deadOutbox(_ filter: DeliveryFilter, limit: Int) async throws -> [OutboxEntry] {
        state.withLock { state in
            Array(Self.dead(filter, in: state).sorted { $0.createdAt < $1.createdAt }.prefix(limit))
        }
    }

    public func redriveDead(_ filter: DeliveryFilter, now: Timestamp) async throws -> Int {
        state.withLock { state in
            let ids = Self.dead(filter, in: state).map(\.id)
            for id in ids {
                state.outbox[id]?.nextAttempt = now
                state.outbox[id]?.attempts = 0
                state.dead.remove(id)
            }
            return ids.count
        }
    }

    private static func dead(_ filter: DeliveryFilter, in state: State) -> [OutboxEntry] {
        state.dead.compactMap { state.outbox[$0] }.filter { filter.matches($0, queueID: state.jobs[$0.jobID]?.queueID) }
    }

    public func deliveries(of job: Job) async throws -> [OutboxDelivery] {
        state.withLock { state in
            state.outbox.values.filter { $0.jobID == job.id }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }.map { entry in
                let status: OutboxDelivery.Status = state.delivered.contains(entry.id) ? .delivered : state.dead.contains(entry.id) ? .dead : .pending
                return OutboxDelivery(entry: entry, status: status, deliveredAt: state.deliveredAt[entry.id])
            }
        }
    }

    public func activity(bucket: String, since: Timestamp, now: Timestamp) async throws -> JobActivity {
        state.withLock { state in
            var activity = JobActivity()
            for job in state.jobs.values where job.bucket == bucket && job.creationTime >= since {
                activity.count(state: job.state, endTime: job.endTime, now: now)
            }
            return activity
        }
    }

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry] {
        state.withLock { state in
            Self.recordRead(now, in: &state)
            return Array(state.outbox.values
                .filter { !state.delivered.contains($0.id) && !state.dead.contains($0.id) && $0.nextAttempt <= now }
                .filter { $0.target.channel == channel && endpoints.admits($0.endpoint) }
                .sorted { ($0.nextAttempt, $0.createdAt) < ($1.nextAttempt, $1.createdAt) }
                .prefix(limit))
        }
    }

    public func deferOutbox(_ ids: [String], dueBy: Timestamp, until: Timestamp) async throws -> [String] {
        state.withLock { state in
            ids.filter { id in
                guard let entry = state.outbox[id], !state.delivered.contains(id), !state.dead.contains(id),
                      entry.nextAttempt <= dueBy else { return false }
                state.outbox[id]?.nextAttempt = until
                return true
            }
        }
    }

    public func signingSecrets(bucket: String) async throws -> SigningSecrets {
        try state.withLock { state in
            if state.secretReadFailures > 0 {
                state.secretReadFailures -= 1
                throw WriteFailed()
            }
            if let secrets = state.webhookSecrets[bucket] { return secrets }
            let secrets = SigningSecrets(current: WebhookSecret.generate())
            state.webhookSecrets[bucket] = secrets
            return secrets
        }
    }

    public func rotateSigningSecret(bucket: String, now: Timestamp, grace: Duration) async throws -> SigningSecrets {
        let existing = try await signingSecrets(bucket: bucket)
        return state.withLock { state in
            let rotated = (state.webhookSecrets[bucket] ?? existing).rotated(now: now, grace: grace)
            state.webhookSecrets[bucket] = rotated
            return rotated
        }
    }

    public func jobIDs(idempotencyKey key: String) async throws -> [JobID]? {
        state.withLock { $0.keys[key]?.ids }
    }

    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws {
        state.withLock { state in
            state.keys = state.keys.filter { $0.value.at >= cutoff }
        }
    }

    public func purgeEnded(before cutoff: Timestamp, limit: Int, keeping: Set<JobID>) async throws -> PurgedRecords {
        state.withLock { state in
            var purged = PurgedRecords()
            let pendingJobs = Set(state.outbox.values.filter { entry in
                !state.delivered.contains(entry.id) && !state.dead.contains(entry.id)
            }.map(\.jobID))
            let jobFloor = JobID(rawValue: timeOrderedIDFloor("j", at: cutoff))
            for job in state.jobs.values.sorted(by: { $0.sequence < $1.sequence }) where purged.jobs < limit {
                guard job.id < jobFloor, job.state.isTerminal, let end = job.endTime, end < cutoff,
                      !pendingJobs.contains(job.id), !keeping.contains(job.id)
                else { continue }
                state.jobs[job.id] = nil
                purged.jobs += 1
            }
            let deliveryFloor = timeOrderedIDFloor("e", at: cutoff)
            for id in state.outbox.keys.sorted() where purged.deliveries < limit {
                guard id < deliveryFloor, state.delivered.contains(id) || state.dead.contains(id) else { continue }
                state.outbox[id] = nil
                state.delivered.remove(id)
                state.deliveredAt[id] = nil
                state.dead.remove(id)
                purged.deliveries += 1
            }
            let runFloor = timeOrderedIDFloor("i", at: cutoff)
            for run in state.runs.values.sorted(by: { $0.id < $1.id }) where purged.runs < limit {
                let announced = !pendingJobs.contains(JobID(rawValue: run.id))
                guard run.id < runFloor, run.state != .running, run.updateTime < cutoff, announced else { continue }
                state.runs[run.id] = nil
                purged.runs += 1
            }
            return purged
        }
    }

    /// Memory always takes writes.
    public func checkWritable() async throws {}
}
