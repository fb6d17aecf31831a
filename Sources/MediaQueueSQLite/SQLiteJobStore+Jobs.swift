import Foundation
import GRDB
public import MediaQueueCore
import MediaQueueXML

/// Submissions (with idempotency keys), reading and listing jobs, progress and cancel.
extension SQLiteJobStore {
    public func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        let now = time.now
        let outcomes = try await transaction { db in
            let admitted = try Self.admit(submissions, now: now, db)
            return try Self.insertCreated(admitted, claimed: [:], db)
        }
        for case .created(let jobs) in outcomes { recentJobs.insert(jobs) }
        return outcomes
    }

    public func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult) {
        let now = time.now
        let recentJobs = self.recentJobs
        let (outcomes, claimed, unclaimed) = try await transaction { db in
            let admitted = try Self.admit(submissions, now: now, db)
            var arriving: [Job] = []
            for case .created(let jobs) in admitted { arriving.append(contentsOf: jobs) }
            // The claim chooses before the new jobs are written, so those it takes are inserted
            // running: one write of their row instead of an insert and an update.
            let (choices, moreWaiting) = try Self.chooseClaims(claim, arriving: arriving, db)
            var claimedArriving: [Int: Job] = [:]
            for case .arriving(let index) in choices {
                var job = arriving[index]
                job.state = .running
                job.startTime = job.startTime ?? claim.now
                job.attempts = 1
                job.lease = Job.Lease(owner: claim.owner, expiresAt: claim.leaseUntil)
                claimedArriving[index] = job
            }
            let outcomes = try Self.insertCreated(admitted, claimed: claimedArriving, db)
            // The inserted jobs in arrival order, with their sequence numbers.
            var inserted: [Job] = []
            for case .created(let jobs) in outcomes { inserted.append(contentsOf: jobs) }
            let storedChoices = choices.compactMap { choice -> Int64? in
                if case .stored(let sequence) = choice { return sequence } else { return nil }
            }
            // Older jobs claimed here may be in the recent-jobs cache.
            var storedJobs = try Self.claimStored(storedChoices, claim, db, known: recentJobs.take).makeIterator()
            var jobs: [Job] = []
            jobs.reserveCapacity(choices.count)
            for choice in choices {
                switch choice {
                case .arriving(let index):
                    var job = claimedArriving[index]!
                    job.sequence = inserted[index].sequence
                    jobs.append(job)
                case .stored:
                    // `claimStored` skips a row that vanished; none can within the transaction.
                    if let job = storedJobs.next() { jobs.append(job) }
                }
            }
            let unclaimed = inserted.indices.filter { claimedArriving[$0] == nil }.map { inserted[$0] }
            return (outcomes, ClaimResult(jobs: jobs, moreWaiting: moreWaiting), unclaimed)
        }
        recentJobs.insert(unclaimed)
        return (outcomes, claimed)
    }

    /// Inserts the jobs of `admitted`'s created outcomes, in order, and returns the outcomes with
    /// their jobs' sequence numbers. `claimed`: jobs to insert in place of the created ones, by
    /// their index among all created jobs (claimed in this transaction, so written running).
    static func insertCreated(_ admitted: [SubmissionOutcome], claimed: [Int: Job], _ db: Database) throws -> [SubmissionOutcome] {
        var index = 0
        return try admitted.map { outcome in
            guard case .created(var jobs) = outcome else { return outcome }
            for position in jobs.indices {
                jobs[position].sequence = try Self.insert(claimed[index] ?? jobs[position], db)
                index += 1
            }
            return .created(jobs)
        }
    }

    /// Checks the submissions against their queues and records their idempotency keys (see
    /// `submit`), in the caller's transaction. A created outcome's jobs are not inserted yet:
    /// their state is set, their sequence number is not (see `insertCreated`).
    static func admit(_ submissions: [Submission], now: Timestamp, _ db: Database) throws -> [SubmissionOutcome] {
        var queueCache: [QueueID: (state: String, maxSize: Int, unfinished: Int)] = [:]
        func queueInfo(_ id: QueueID) throws -> (state: String, maxSize: Int, unfinished: Int)? {
            if let cached = queueCache[id] { return cached }
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, max_size FROM queues WHERE id = ?"), arguments: [id.rawValue]) else {
                return nil
            }
            let unfinished = try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM jobs WHERE queue_id = ? AND state IN ('Submitted', 'Pause', 'Running')"),
                arguments: [id.rawValue]
            ) ?? 0
            let info = (state: row["state"] as String, maxSize: row["max_size"] as Int, unfinished: unfinished)
            queueCache[id] = info
            return info
        }

        var outcomes: [SubmissionOutcome] = []
        outcomes.reserveCapacity(submissions.count)
        submissionLoop: for submission in submissions {
            // The key goes in first: a new key (nearly every one) costs one statement, a known
            // one a second to read its jobs. A refused submission takes its key out again.
            if let key = submission.idempotencyKey {
                var insert = DirectStatement(try db.cachedStatement(
                    sql: "INSERT INTO idempotency_keys (key, job_ids, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING"
                ))
                insert.bind(key)
                insert.bind(JobID.joined(submission.jobs.map(\.id)))
                insert.bind(now.milliseconds)
                try insert.run(db)
                if db.changesCount == 0 {
                    let ids = try String.fetchOne(db.cachedStatement(sql: "SELECT job_ids FROM idempotency_keys WHERE key = ?"), arguments: [key]) ?? ""
                    outcomes.append(.duplicate(JobID.split(ids)))
                    continue
                }
            }
            func refuse(_ error: CIError) throws {
                if let key = submission.idempotencyKey {
                    try db.execute(sql: "DELETE FROM idempotency_keys WHERE key = ?", arguments: [key])
                }
                outcomes.append(.refused(error))
            }
            for (queueID, count) in submission.jobsPerQueue {
                guard let info = try queueInfo(queueID) else {
                    try refuse(CIError(.noSuchQueue, "queue \(queueID) does not exist", element: "QueueId"))
                    continue submissionLoop
                }
                if info.unfinished + count > info.maxSize {
                    try refuse(CIError(
                        .queueFull,
                        "queue \(queueID) already holds \(info.unfinished) unfinished jobs (MaxSize \(info.maxSize))",
                        element: "QueueId"
                    ))
                    continue submissionLoop
                }
            }
            var created: [Job] = []
            created.reserveCapacity(submission.jobs.count)
            for var job in submission.jobs {
                guard let info = try queueInfo(job.queueID) else { continue }
                job.state = info.state == MediaQueue.State.paused.rawValue ? .pause : .submitted
                // A new row has no claim on it, whatever the value handed in carried.
                job.lease = nil
                job.attempts = 0
                job.cancelRequested = false
                queueCache[job.queueID]?.unfinished += 1
                created.append(job)
            }
            outcomes.append(.created(created))
        }
        return outcomes
    }

    public func job(id: JobID) async throws -> Job? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.jobColumns) FROM jobs WHERE id = ?", arguments: [id.rawValue]).map(Self.job)
        }
    }

    public func updateProgress(_ id: JobID, progress: Int) async throws {
        try await transaction { db in
            try db.execute(sql: "UPDATE jobs SET progress = ? WHERE id = ? AND state = 'Running'", arguments: [progress, id.rawValue])
        }
    }

    public func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome {
        try await transaction { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT \(Self.jobColumns) FROM jobs WHERE id = ?", arguments: [id.rawValue]) else {
                throw CIError(.noSuchJob, "job \(id) does not exist")
            }
            var job = try Self.job(row)
            switch job.state {
            case .submitted, .pause:
                try db.execute(sql: "UPDATE jobs SET state = 'Cancel', end_time = ? WHERE id = ?", arguments: [now.milliseconds, id.rawValue])
                job.state = .cancel
                job.endTime = now
                return .cancelled(job)
            case .running:
                try db.execute(sql: "UPDATE jobs SET cancel_requested = 1 WHERE id = ?", arguments: [id.rawValue])
                job.cancelRequested = true
                return .stopping(job)
            case .cancel:
                return .alreadyCancelled(job)
            case .success, .failed:
                throw CIError(.invalidJobState, "job \(id) has already ended as \(job.state.rawValue)")
            }
        }
    }

    public func cancelRequests(owner: String) async throws -> [JobID] {
        try await read { db in
            try String.fetchAll(
                db,
                sql: "SELECT id FROM jobs WHERE lease_owner = ? AND state = 'Running' AND cancel_requested = 1",
                arguments: [owner]
            ).map(JobID.init(rawValue:))
        }
    }

    public func jobs(_ query: JobQuery) async throws -> [Job] {
        try await read { db in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let bucket = query.bucket { conditions.append("bucket = ?"); arguments += [bucket] }
            if let queueID = query.queueID { conditions.append("queue_id = ?"); arguments += [queueID.rawValue] }
            if let tag = query.tag { conditions.append("tag = ?"); arguments += [tag] }
            if !query.states.isEmpty {
                conditions.append("state IN (\(query.states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ",")))")
            }
            if let from = query.createdFrom { conditions.append("creation_time >= ?"); arguments += [from.milliseconds] }
            if let to = query.createdTo { conditions.append("creation_time <= ?"); arguments += [to.milliseconds] }
            let needles = query.storedTextNeedles
            if let needle = needles.operation { conditions.append("instr(operation, ?) > 0"); arguments += [needle] }
            if let needle = needles.input { conditions.append("instr(input, ?) > 0"); arguments += [needle] }
            if let after = query.after {
                conditions.append(query.newestFirst ? "seq < ?" : "seq > ?")
                arguments += [after]
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [query.limit]
            return try Row.fetchAll(
                db,
                sql: "SELECT \(Self.jobColumns) FROM jobs \(whereClause) ORDER BY seq \(query.newestFirst ? "DESC" : "ASC") LIMIT ?",
                arguments: arguments
            ).map(Self.job)
        }
    }

    public func jobIDs(idempotencyKey key: String) async throws -> [JobID]? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT job_ids FROM idempotency_keys WHERE key = ?", arguments: [key])
        }.map(JobID.split)
    }

    /// In transactions of `idempotencyPurgeBatch` keys: an hour of keys at a high rate is
    /// millions of rows, and one transaction would hold SQLite's only write lock (every
    /// submission, claim and end, and the other processes on the folder) for seconds.
    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws {
        while true {
            let removed = try await transaction { db in
                try db.execute(
                    sql: "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
                    arguments: [cutoff.milliseconds, Self.idempotencyPurgeBatch]
                )
                return db.changesCount
            }
            if removed < Self.idempotencyPurgeBatch { return }
        }
    }

    static let idempotencyPurgeBatch = 5_000

    /// An empty IMMEDIATE transaction: it fails when the write lock cannot be had (another
    /// writer holds it past the busy timeout) or the file cannot be written.
    public func checkWritable() async throws {
        let now = time.now
        // A real write: an empty transaction succeeds on a full disk.
        try await transaction { db in
            try db.execute(
                sql: "INSERT INTO readiness_probe (id, checked_at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
                arguments: [now.milliseconds]
            )
        }
    }
}
